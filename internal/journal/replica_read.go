package journal

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Reading the replica copies, and a cursor over the node's own pending
// records (resync, handover).

// ReplicaStats describes the copies a journal holds for other nodes.
type ReplicaStats struct {
	Pending int   // copies
	Bytes   int64 // their namespace+key+value bytes
	Origins []OriginStats
}

// OriginStats is the copies of one origin.
type OriginStats struct {
	Origin
	Records int
}

// ReplicaCounts returns the counters alone (no origins): cheap.
func (j *Journal) ReplicaCounts() (ReplicaStats, error) {
	var s ReplicaStats
	err := j.view(func(tx *bolt.Tx) error {
		c, err := readRepCounters(tx)
		s.Pending, s.Bytes = int(c.pending), int64(c.bytes)
		return err
	})
	return s, err
}

// ReplicaStats returns the counters and the origins, by name.
func (j *Journal) ReplicaStats() (ReplicaStats, error) {
	var s ReplicaStats
	err := j.view(func(tx *bolt.Tx) error {
		c, err := readRepCounters(tx)
		if err != nil {
			return err
		}
		s.Pending, s.Bytes = int(c.pending), int64(c.bytes)
		return tx.Bucket(bucketReplicas).ForEachBucket(func(name []byte) error {
			b := tx.Bucket(bucketReplicas).Bucket(name)
			s.Origins = append(s.Origins, OriginStats{Origin: originOf(name), Records: b.Stats().KeyN})
			return nil
		})
	})
	return s, err
}

// ReplicaOrigins lists the origins this journal holds copies of, by name.
func (j *Journal) ReplicaOrigins() ([]Origin, error) {
	var out []Origin
	err := j.view(func(tx *bolt.Tx) error {
		out = out[:0]
		return tx.Bucket(bucketReplicas).ForEachBucket(func(name []byte) error {
			out = append(out, originOf(name))
			return nil
		})
	})
	return out, err
}

// ReplicaPending returns the newest copy of (ns, key) among the origins
// include accepts, and its origin. include is called inside a read
// transaction: it must not call the Journal.
func (j *Journal) ReplicaPending(ns, key string, include func(Origin) bool) (Record, Origin, bool, error) {
	var (
		best  Record
		from  Origin
		found bool
	)
	k := nsKey(ns, key)
	err := j.view(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketReplicas)
		return rb.ForEachBucket(func(name []byte) error {
			o := originOf(name)
			if !include(o) {
				return nil
			}
			v := rb.Bucket(name).Get(k)
			if v == nil {
				return nil
			}
			r, _, err := decode(v)
			if err != nil {
				return fmt.Errorf("replica copy of %s: %w", o, err)
			}
			if !found || r.Version > best.Version {
				best, from, found = r, o, true
			}
			return nil
		})
	})
	return best, from, found, err
}

// ReplicaCopies returns up to n copies of origin o whose keys sort after
// (afterNS, afterKey), in key order (pass "", "" to start); none when o has
// no copies. Appended is when the copy arrived.
func (j *Journal) ReplicaCopies(o Origin, afterNS, afterKey string, n int) ([]Record, error) {
	var out []Record
	if n <= 0 {
		return nil, nil
	}
	after := []byte(nil)
	if afterNS != "" {
		after = nsKey(afterNS, afterKey)
	}
	err := j.view(func(tx *bolt.Tx) error {
		out = out[:0]
		b := tx.Bucket(bucketReplicas).Bucket(o.bucket())
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < n; k, v = c.Next() {
			r, _, err := decode(v)
			if err != nil {
				return fmt.Errorf("replica copy of %s: %w", o, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Scan returns up to n pending records whose queue sequence is above
// after, in queue order, and the sequence of the last one returned (after
// when none): a cursor over every pending record that survives writes
// between calls. Records that become pending during a scan may be missed;
// callers that must see them scan again.
func (j *Journal) Scan(after uint64, n int) ([]Record, uint64, error) {
	var out []Record
	next := after
	if n <= 0 {
		return nil, after, nil
	}
	err := j.view(func(tx *bolt.Tx) error {
		out, next = out[:0], after
		c := tx.Bucket(bucketQueue).Cursor()
		for sk, nk := c.Seek(seqKey(after + 1)); sk != nil && len(out) < n; sk, nk = c.Next() {
			r, seq, err := pendingAt(tx, nk)
			if err != nil {
				return err
			}
			out = append(out, r)
			next = seq
		}
		return nil
	})
	return out, next, err
}
