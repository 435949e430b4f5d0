package journal

import (
	"bytes"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The flusher's side. One flusher goroutine is expected: it reads the oldest
// pending records, writes them to the database, then calls Ack for those
// written, Retry for those that failed and Bury for those that keep failing.
// Each call is its own transaction (and fsync).

// Pending returns the pending write of (ns, key), if any.
func (j *Journal) Pending(ns, key string) (Record, bool, error) {
	var (
		r  Record
		ok bool
	)
	err := j.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPending).Get(nsKey(ns, key))
		if b == nil {
			return nil
		}
		var err error
		r, _, err = decode(b) // decode copies out of the transaction
		ok = err == nil
		return err
	})
	return r, ok, err
}

// Oldest returns up to n pending records, oldest first: in the order their
// keys first became pending (a replaced write keeps its key's place). n <= 0
// returns none.
func (j *Journal) Oldest(n int) ([]Record, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []Record
	err := j.view(func(tx *bolt.Tx) error {
		out = out[:0]
		c := tx.Bucket(bucketQueue).Cursor()
		for sk, nk := c.First(); sk != nil && len(out) < n; sk, nk = c.Next() {
			r, seq, err := pendingAt(tx, nk)
			if err != nil {
				return err
			}
			if !bytes.Equal(seqKey(seq), sk) {
				return corruptf("queue entry %x names a record of namespace %q whose sequence is %d", sk, nsOf(nk), seq)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Ack removes each pending record whose stored Version equals r.Version: it
// has reached the database. A newer write of the key that arrived meanwhile
// stays pending, and so does its queue position. Records not pending are
// ignored. All of rs are removed in one transaction.
func (j *Journal) Ack(rs []Record) error {
	if len(rs) == 0 {
		return nil
	}
	return j.update("ack", func(tx *bolt.Tx) error {
		c, err := readCounters(tx)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if _, _, err := removePending(tx, r, &c); err != nil {
				return err
			}
		}
		return c.write(tx)
	})
}

// Retry records a failed flush of r: Attempts+1 and LastError (cut to 1 KiB).
// The record stays pending in its place. If the pending version is no longer
// r.Version (a newer write arrived, or r was acked), Retry does nothing: the
// newer write starts with no attempts.
func (j *Journal) Retry(r Record, cause error) error {
	return j.update("retry", func(tx *bolt.Tx) error {
		p := tx.Bucket(bucketPending)
		k := nsKey(r.Namespace, r.Key)
		b := p.Get(k)
		if b == nil {
			return nil
		}
		cur, seq, err := decode(b)
		if err != nil {
			return fmt.Errorf("a pending record of namespace %q: %w", r.Namespace, err)
		}
		if cur.Version != r.Version {
			return nil
		}
		failed(&cur, cause)
		return p.Put(k, encode(cur, seq))
	})
}

// removePending deletes the pending record of r's key, with its queue entry,
// if its stored Version equals r.Version, and updates c. It returns the
// stored record and whether it was removed.
func removePending(tx *bolt.Tx, r Record, c *counters) (Record, bool, error) {
	p := tx.Bucket(bucketPending)
	k := nsKey(r.Namespace, r.Key)
	b := p.Get(k)
	if b == nil {
		return Record{}, false, nil
	}
	cur, seq, err := decode(b)
	if err != nil {
		return Record{}, false, fmt.Errorf("a pending record of namespace %q: %w", r.Namespace, err)
	}
	if cur.Version != r.Version {
		return cur, false, nil
	}
	if err := p.Delete(k); err != nil {
		return Record{}, false, err
	}
	if err := tx.Bucket(bucketQueue).Delete(seqKey(seq)); err != nil {
		return Record{}, false, err
	}
	if c.pending == 0 || c.bytes < uint64(cur.size()) {
		return Record{}, false, corruptf("counters (%d pending, %d bytes) below a removed record of namespace %q",
			c.pending, c.bytes, r.Namespace)
	}
	c.pending--
	c.bytes -= uint64(cur.size())
	return cur, true, nil
}

// failed counts one failed flush of r.
func failed(r *Record, cause error) {
	if r.Attempts < ^uint32(0) {
		r.Attempts++
	}
	r.LastError = "unknown error"
	if cause != nil {
		r.LastError = cause.Error()
	}
	if len(r.LastError) > maxLastError {
		r.LastError = strings.ToValidUTF8(r.LastError[:maxLastError], "")
	}
}
