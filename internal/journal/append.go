package journal

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// outcome is what one run of an Append's batch function did. Batch may run
// the function more than once; each run assigns the outcome afresh, and the
// run that committed is the last one.
type outcome int

const (
	outAdded      outcome = iota // a new pending key
	outReplaced                  // replaced the pending write of the key
	outSuperseded                // a newer version was already pending: nothing stored
	outCancelled                 // ctx was done before the function ran: nothing stored
	outFull                      // a bound was reached: nothing stored
)

// Append stores r as the pending write of (r.Namespace, r.Key) and returns
// nil only once it is on disk (fsync'd), so the caller may acknowledge it.
// Concurrent Appends share one commit and one fsync (bbolt DB.Batch); a lone
// Append commits at once.
//
// If the key is already pending, r replaces it (keeping its Appended time and
// queue position, resetting Attempts) unless the stored Version is higher:
// then r is superseded, nothing is stored and Append returns nil. Equal
// versions replace.
//
// Append ignores r.Appended, r.Attempts and r.LastError. It returns an error
// wrapping ErrFull (nothing stored) when the write would pass a bound or the
// disk is full, ErrInvalid for a record it cannot store, and ctx.Err() if ctx
// is done before the write is committed; once committed, it returns nil.
func (j *Journal) Append(ctx context.Context, r Record) error {
	if err := validate(&r); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	k := nsKey(r.Namespace, r.Key)
	r.Appended = j.opts.Now().UTC()
	r.Attempts, r.LastError = 0, ""
	var res result
	fn := func(tx *bolt.Tx) error {
		// Idempotent: res is computed from tx and assigned, never accumulated.
		if ctx.Err() != nil {
			res = result{out: outCancelled}
			return nil
		}
		var err error
		res, err = j.put(tx, k, r)
		return err
	}
	// Group commit. A lone Append commits at once: waiting MaxBatchDelay for
	// company that is not coming would only add latency. As soon as Appends
	// overlap, they go through Batch and share commits and fsyncs.
	var err error
	if j.inflight.Add(1) == 1 {
		err = j.db.Update(fn)
	} else {
		err = j.db.Batch(fn)
	}
	j.inflight.Add(-1)
	if err != nil {
		return j.wrap(fmt.Sprintf("append %s/%s", r.Namespace, r.Key), err)
	}
	switch res.out {
	case outCancelled:
		return ctx.Err()
	case outFull:
		return res.full
	case outReplaced, outSuperseded:
		j.coalesced.Add(1)
	}
	j.appends.Add(1)
	return nil
}

// result is what put did; full is the error for the caller when out is
// outFull.
type result struct {
	out  outcome
	full error
}

// put stores r under k in tx, enforcing the bounds. A bound yields outFull
// and an error for the caller, not for bbolt: returning it to Batch would
// roll back and re-run everyone else's writes in the batch.
func (j *Journal) put(tx *bolt.Tx, k []byte, r Record) (result, error) {
	p := tx.Bucket(bucketPending)
	c, err := readCounters(tx)
	if err != nil {
		return result{}, err
	}
	size := r.size()
	if old := p.Get(k); old != nil {
		prev, seq, err := decode(old)
		if err != nil {
			return result{}, fmt.Errorf("pending record %s/%s: %w", r.Namespace, r.Key, err)
		}
		if prev.Version > r.Version {
			return result{out: outSuperseded}, nil
		}
		delta := size - prev.size()
		if delta > 0 && int64(c.bytes)+delta > j.opts.MaxBytes {
			return result{outFull, j.fullBytes(c, delta)}, nil
		}
		r.Appended = prev.Appended
		c.bytes = uint64(int64(c.bytes) + delta)
		if err := p.Put(k, encode(r, seq)); err != nil {
			return result{}, err
		}
		return result{out: outReplaced}, c.write(tx)
	}
	if c.pending >= uint64(j.opts.MaxPending) {
		return result{outFull, fmt.Errorf("%w: %d pending writes (max_pending %d); the database is not keeping up or is down — retry later",
			ErrFull, c.pending, j.opts.MaxPending)}, nil
	}
	if int64(c.bytes)+size > j.opts.MaxBytes {
		return result{outFull, j.fullBytes(c, size)}, nil
	}
	q := tx.Bucket(bucketQueue)
	seq, err := q.NextSequence()
	if err != nil {
		return result{}, err
	}
	if err := q.Put(seqKey(seq), k); err != nil {
		return result{}, err
	}
	if err := p.Put(k, encode(r, seq)); err != nil {
		return result{}, err
	}
	c.pending++
	c.bytes += uint64(size)
	return result{out: outAdded}, c.write(tx)
}

func (j *Journal) fullBytes(c counters, add int64) error {
	return fmt.Errorf("%w: %d pending bytes + %d would pass max_bytes %d (%d pending writes); the database is not keeping up or is down — retry later",
		ErrFull, c.bytes, add, j.opts.MaxBytes, c.pending)
}

// validate rejects records the journal cannot store faithfully.
func validate(r *Record) error {
	switch {
	case r.Namespace == "":
		return fmt.Errorf("%w: empty namespace", ErrInvalid)
	case strings.IndexByte(r.Namespace, 0) >= 0:
		return fmt.Errorf("%w: namespace %q contains a NUL byte", ErrInvalid, r.Namespace)
	case r.Key == "":
		return fmt.Errorf("%w: empty key in namespace %s", ErrInvalid, r.Namespace)
	case len(r.Namespace)+1+len(r.Key) > bolt.MaxKeySize:
		return fmt.Errorf("%w: namespace and key are %d bytes, more than %d", ErrInvalid,
			len(r.Namespace)+1+len(r.Key), bolt.MaxKeySize)
	case r.Delete && r.Value != nil:
		return fmt.Errorf("%w: delete of %s/%s carries a value", ErrInvalid, r.Namespace, r.Key)
	}
	return nil
}
