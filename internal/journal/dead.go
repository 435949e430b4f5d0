package journal

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Dead letters: pending records that kept failing (a poison value, a row the
// database rejects) are moved aside so they stop blocking the flusher. They
// stay on disk until an operator revives or drops them, one per key.

// Bury moves the pending record of r's key to the dead letters, with
// Attempts+1 and LastError from cause, if its stored Version still equals
// r.Version. If a newer write arrived meanwhile (or r is no longer pending),
// Bury does nothing: the newer write deserves its own attempts. A dead letter
// already held for the key is replaced.
func (j *Journal) Bury(r Record, cause error) error {
	return j.update("bury", func(tx *bolt.Tx) error {
		c, err := readCounters(tx)
		if err != nil {
			return err
		}
		cur, removed, err := removePending(tx, r, &c)
		if err != nil || !removed {
			return err
		}
		failed(&cur, cause)
		d := tx.Bucket(bucketDead)
		k := nsKey(r.Namespace, r.Key)
		if d.Get(k) == nil {
			c.dead++
		}
		if err := d.Put(k, encode(cur, 0)); err != nil {
			return err
		}
		return c.write(tx)
	})
}

// DeadLetters returns up to limit dead letters, ordered by namespace then
// key. limit <= 0 returns none.
func (j *Journal) DeadLetters(limit int) ([]Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []Record
	err := j.view(func(tx *bolt.Tx) error {
		out = out[:0]
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			r, _, err := decode(v) // decode copies out of the transaction
			if err != nil {
				return fmt.Errorf("dead letter %q: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Revive moves the dead letter of (ns, key) back to pending, with Attempts
// reset, at the tail of the queue (Appended is now). If a pending write of the
// key has a higher version, the dead letter is dropped instead: the newer
// write wins. Revive is bounded like Append (an error wrapping ErrFull leaves
// the dead letter in place); a key with no dead letter wraps ErrNotFound.
func (j *Journal) Revive(ns, key string) error {
	now := j.opts.Now().UTC()
	return j.update("revive", func(tx *bolt.Tx) error {
		r, err := j.removeDead(tx, ns, key)
		if err != nil {
			return err
		}
		r.Attempts, r.LastError, r.Appended = 0, "", now
		res, err := j.put(tx, nsKey(ns, key), r, true)
		if err != nil {
			return err
		}
		if res.out == outFull {
			return res.full // rolls back the removal too
		}
		return nil
	})
}

// Drop deletes the dead letter of (ns, key); with none it wraps ErrNotFound.
func (j *Journal) Drop(ns, key string) error {
	return j.update("drop", func(tx *bolt.Tx) error {
		_, err := j.removeDead(tx, ns, key)
		return err
	})
}

// removeDead deletes the dead letter of (ns, key), updating the counters, and
// returns it.
func (j *Journal) removeDead(tx *bolt.Tx, ns, key string) (Record, error) {
	d := tx.Bucket(bucketDead)
	k := nsKey(ns, key)
	b := d.Get(k)
	if b == nil {
		return Record{}, fmt.Errorf("%w: %s/%s", ErrNotFound, ns, key)
	}
	r, _, err := decode(b)
	if err != nil {
		return Record{}, fmt.Errorf("dead letter %s/%s: %w", ns, key, err)
	}
	if err := d.Delete(k); err != nil {
		return Record{}, err
	}
	c, err := readCounters(tx)
	if err != nil {
		return Record{}, err
	}
	if c.dead == 0 {
		return Record{}, corruptf("dead-letter counter is zero with a dead letter of namespace %q present", ns)
	}
	c.dead--
	return r, c.write(tx)
}
