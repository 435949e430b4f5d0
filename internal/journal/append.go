package journal

import (
	"context"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// outcome is what put did with one record.
type outcome int

const (
	outAdded      outcome = iota // a new pending key
	outReplaced                  // replaced the pending write of the key
	outSuperseded                // a newer version was already pending: nothing stored
	outCancelled                 // ctx was done before the commit took it: nothing stored
	outFull                      // a bound was reached: nothing stored
)

// appendReq is one Append waiting for the committer.
type appendReq struct {
	ctx  context.Context
	k    []byte
	r    Record
	res  result
	err  error
	done chan struct{}
	// apply, when set, replaces the put of k and r: it runs in the group's
	// transaction (replica.go). An error from it rolls the group back.
	apply func(*bolt.Tx) error
}

// Append stores r as the pending write of (r.Namespace, r.Key) and returns
// nil only once it is on disk (fsync'd), so the caller may acknowledge it.
//
// Group commit without a timer: one committer goroutine takes every Append
// waiting, commits them in one transaction (one fsync), answers them, and
// loops at once. A lone Append is committed immediately; under load, the
// Appends that arrive during one fsync share the next.
//
// If the key is already pending, r replaces it (keeping its Appended time and
// queue position, resetting Attempts) unless the stored Version is higher:
// then r is superseded, nothing is stored and Append returns ErrSuperseded.
// Equal versions replace.
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
	r.Appended = j.opts.Now().UTC()
	r.Attempts, r.LastError = 0, ""
	req := &appendReq{ctx: ctx, k: nsKey(r.Namespace, r.Key), r: r, done: make(chan struct{})}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrClosed
	}
	j.reqs <- req // Close waits for the lock, so the channel is open here
	j.mu.RUnlock()
	<-req.done
	if req.err != nil {
		return j.wrap(fmt.Sprintf("append %s/%s", r.Namespace, r.Key), req.err)
	}
	switch req.res.out {
	case outCancelled:
		return ctx.Err()
	case outFull:
		return req.res.full
	case outSuperseded:
		j.coalesced.Add(1)
		j.appends.Add(1)
		return ErrSuperseded
	case outReplaced:
		j.coalesced.Add(1)
	}
	j.appends.Add(1)
	return nil
}

// committer commits waiting Appends in groups until j.reqs is closed.
func (j *Journal) committer() {
	defer close(j.committed)
	batch := make([]*appendReq, 0, j.opts.MaxBatchSize)
	for first := range j.reqs {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < j.opts.MaxBatchSize {
			select {
			case req, ok := <-j.reqs:
				if !ok {
					break gather
				}
				batch = append(batch, req)
			default:
				break gather
			}
		}
		j.commit(batch)
	}
}

// commit writes batch in one transaction. A bound or a cancelled context
// fails only its own record; a failing transaction (a full disk) fails the
// whole batch, and nothing of it is stored.
func (j *Journal) commit(batch []*appendReq) {
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, req := range batch {
			if req.apply != nil {
				if err := req.apply(tx); err != nil {
					return err
				}
				continue
			}
			if req.ctx.Err() != nil {
				req.res = result{out: outCancelled}
				continue
			}
			res, err := j.put(tx, req.k, req.r, true)
			if err != nil {
				return err
			}
			req.res = res
		}
		return nil
	})
	for _, req := range batch {
		req.err = err
		close(req.done)
	}
}

// result is what put did; full is the error for the caller when out is
// outFull.
type result struct {
	out  outcome
	full error
}

// put stores r under k in tx, enforcing the bounds when bounded (writes
// adopted from other nodes were acknowledged already: Adopt stores them
// past the bounds). A bound yields outFull and an error for the caller, not
// for bbolt: returning it would roll back everyone else's writes in the
// group.
func (j *Journal) put(tx *bolt.Tx, k []byte, r Record, bounded bool) (result, error) {
	p := tx.Bucket(bucketPending)
	c, err := readCounters(tx)
	if err != nil {
		return result{}, err
	}
	size := r.size()
	if old := p.Get(k); old != nil {
		prev, seq, err := decode(old)
		if err != nil {
			return result{}, fmt.Errorf("a pending record of namespace %q: %w", r.Namespace, err)
		}
		if prev.Version > r.Version {
			return result{out: outSuperseded}, nil
		}
		delta := size - prev.size()
		if bounded && delta > 0 && int64(c.bytes)+delta > j.opts.MaxBytes {
			return result{outFull, j.fullBytes(c, delta)}, nil
		}
		r.Appended = prev.Appended
		c.bytes = uint64(int64(c.bytes) + delta)
		if err := p.Put(k, encode(r, seq)); err != nil {
			return result{}, err
		}
		return result{out: outReplaced}, c.write(tx)
	}
	if bounded && c.pending >= uint64(j.opts.MaxPending) {
		return result{outFull, fmt.Errorf("%w: %d pending writes (max_pending %d); the database is not keeping up or is down — retry later",
			ErrFull, c.pending, j.opts.MaxPending)}, nil
	}
	if bounded && int64(c.bytes)+size > j.opts.MaxBytes {
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
		return fmt.Errorf("%w: a delete in namespace %q carries a value", ErrInvalid, r.Namespace)
	}
	return nil
}
