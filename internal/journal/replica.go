package journal

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Replica copies. A node keeps, beside its own pending writes, copies of
// the pending writes of other nodes that chose it as a replica: one nested
// bucket per origin journal (the origin's node name and journal ID) under
// bucketReplicas, keyed like the pending bucket. They live in the same file
// and are committed by the same committer as Appends, so a replica's copies
// and its own writes share one fsync. Copies are bounded like the node's own
// writes (Options.MaxPending, Options.MaxBytes, counted apart): a copy that
// would pass a bound is refused with an error wrapping ErrFull.
//
// A copy is dropped when its origin reports the key written to the database
// (ReplicaOp.Drop) and when the node adopts it (Adopt: the origin departed
// and this node takes the write over).

var (
	bucketReplicas = []byte("replicas")        // origin bucket name → nsKey → encode(record, 0)
	metaID         = []byte("id")              // the journal's ID
	metaRepPending = []byte("replica_pending") // number of replica copies
	metaRepBytes   = []byte("replica_bytes")   // their namespace+key+value bytes
)

const (
	originSep      = "\x00"              // between node name and journal ID
	maxOriginName  = bolt.MaxKeySize / 2 // bound on a node name or ID
	replicaIDBytes = 16                  // random bytes of a journal ID
)

// Origin names the journal replicated records come from: the node that
// journaled them and its journal's ID (ID).
type Origin struct {
	Node, ID string
}

func (o Origin) String() string { return o.Node + "/" + o.ID }

func (o Origin) bucket() []byte { return []byte(o.Node + originSep + o.ID) }

func (o Origin) validate() error {
	switch {
	case o.Node == "" || o.ID == "":
		return fmt.Errorf("%w: replica origin needs a node name and a journal ID, got %q", ErrInvalid, o.String())
	case strings.Contains(o.Node, originSep) || strings.Contains(o.ID, originSep):
		return fmt.Errorf("%w: replica origin %q contains a NUL byte", ErrInvalid, o.String())
	case len(o.Node) > maxOriginName || len(o.ID) > maxOriginName:
		return fmt.Errorf("%w: replica origin name or ID longer than %d bytes", ErrInvalid, maxOriginName)
	}
	return nil
}

func originOf(name []byte) Origin {
	node, id, _ := strings.Cut(string(name), originSep)
	return Origin{Node: node, ID: id}
}

// ReplicaOp is one change to the copies of an origin: store Record (a newer
// copy of the key wins; an equal version replaces), or, with Drop, remove
// the copy of Record's key if its version is Record.Version or lower (the
// origin wrote that version, or a newer one, to the database).
type ReplicaOp struct {
	Record
	Drop bool
}

// ReplicaResult is what ApplyReplica did.
type ReplicaResult struct {
	// Refused has one entry per op: nil when applied (or moot: an older
	// copy, a drop of nothing), else an error wrapping ErrFull.
	Refused []error
	// Commit identifies the transaction that stored the ops; ops of
	// concurrent calls that share a commit (and its fsync) share it.
	Commit int
}

// replicaState is the Journal's replication state in memory.
type replicaState struct {
	mu sync.Mutex
	id string // cached journal ID
}

// ID returns the journal's ID: random, made when the file is first asked
// for it and kept in the file, so a node that lost its disk comes back with
// another. Replicas tell an origin's journals apart by it.
func (j *Journal) ID() (string, error) {
	j.rep.mu.Lock()
	defer j.rep.mu.Unlock()
	if j.rep.id != "" {
		return j.rep.id, nil
	}
	var id string
	err := j.view(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketMeta).Get(metaID))
		return nil
	})
	if err == nil && id != "" {
		j.rep.id = id
		return id, nil
	}
	err = j.update("make ID", func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if b := m.Get(metaID); b != nil {
			id = string(b)
			return nil
		}
		b := make([]byte, replicaIDBytes)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		id = hex.EncodeToString(b)
		return m.Put(metaID, []byte(id))
	})
	if err != nil {
		return "", err
	}
	j.rep.id = id
	return id, nil
}

// ApplyReplica applies ops to the copies of origin o in one commit, shared
// with concurrent Appends and ApplyReplica calls (group commit). It returns
// once they are on disk. A bound refuses single ops (Refused); a failing
// commit (a full disk) fails the call, and nothing of it is stored.
func (j *Journal) ApplyReplica(o Origin, ops []ReplicaOp) (ReplicaResult, error) {
	if err := o.validate(); err != nil {
		return ReplicaResult{}, err
	}
	for i := range ops {
		if err := validate(&ops[i].Record); err != nil {
			return ReplicaResult{}, err
		}
	}
	res := ReplicaResult{Refused: make([]error, len(ops))}
	now := j.opts.Now().UTC()
	req := &appendReq{done: make(chan struct{}), apply: func(tx *bolt.Tx) error {
		clear(res.Refused)
		res.Commit = tx.ID()
		b, err := tx.Bucket(bucketReplicas).CreateBucketIfNotExists(o.bucket())
		if err != nil {
			return err
		}
		c, err := readRepCounters(tx)
		if err != nil {
			return err
		}
		for i, op := range ops {
			k := nsKey(op.Namespace, op.Key)
			if op.Drop {
				if err := dropCopy(b, k, op.Version, &c); err != nil {
					return err
				}
				continue
			}
			op.Appended, op.Attempts, op.LastError = now, 0, ""
			if res.Refused[i], err = j.putCopy(b, k, op.Record, &c); err != nil {
				return err
			}
		}
		if err := removeIfEmpty(tx, o); err != nil {
			return err
		}
		return c.write(tx)
	}}
	if err := j.submit(req); err != nil {
		return ReplicaResult{}, err
	}
	if req.err != nil {
		return ReplicaResult{}, j.wrap("replicate from "+o.Node, req.err)
	}
	return res, nil
}

// submit hands req to the committer and waits for its commit.
func (j *Journal) submit(req *appendReq) error {
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrClosed
	}
	j.reqs <- req // Close waits for the lock, so the channel is open here
	j.mu.RUnlock()
	<-req.done
	return nil
}

// repCounters count the replica copies: exact, in the meta bucket.
type repCounters struct{ pending, bytes uint64 }

func readRepCounters(tx *bolt.Tx) (repCounters, error) {
	m := tx.Bucket(bucketMeta)
	var c repCounters
	for _, f := range []struct {
		name []byte
		v    *uint64
	}{{metaRepPending, &c.pending}, {metaRepBytes, &c.bytes}} {
		b := m.Get(f.name)
		switch len(b) {
		case 0:
		case 8:
			*f.v = binary.BigEndian.Uint64(b)
		default:
			return c, corruptf("meta counter %q has %d bytes", f.name, len(b))
		}
	}
	return c, nil
}

func (c repCounters) write(tx *bolt.Tx) error {
	m := tx.Bucket(bucketMeta)
	if err := m.Put(metaRepPending, binary.BigEndian.AppendUint64(nil, c.pending)); err != nil {
		return err
	}
	return m.Put(metaRepBytes, binary.BigEndian.AppendUint64(nil, c.bytes))
}

// putCopy stores r under k in b unless b holds a newer copy. A bound
// refuses it (the returned refusal, not a transaction error).
func (j *Journal) putCopy(b *bolt.Bucket, k []byte, r Record, c *repCounters) (refused, err error) {
	size := r.size()
	if old := b.Get(k); old != nil {
		prev, _, err := decode(old)
		if err != nil {
			return nil, fmt.Errorf("replica copy %s: %w", r.Namespace, err)
		}
		if prev.Version > r.Version {
			return nil, nil
		}
		delta := size - prev.size()
		if delta > 0 && int64(c.bytes)+delta > j.opts.MaxBytes {
			return j.repFull(*c), nil
		}
		c.bytes = uint64(int64(c.bytes) + delta)
		return nil, b.Put(k, encode(r, 0))
	}
	if c.pending >= uint64(j.opts.MaxPending) || int64(c.bytes)+size > j.opts.MaxBytes {
		return j.repFull(*c), nil
	}
	c.pending++
	c.bytes += uint64(size)
	return nil, b.Put(k, encode(r, 0))
}

func (j *Journal) repFull(c repCounters) error {
	return fmt.Errorf("%w: this node holds %d replica copies (%d bytes) for other nodes, at its bound (max_pending %d, max_bytes %d); their owners are not flushing — is the database down?",
		ErrFull, c.pending, c.bytes, j.opts.MaxPending, j.opts.MaxBytes)
}

// dropCopy removes the copy under k from b if its version is at most v.
func dropCopy(b *bolt.Bucket, k []byte, v uint64, c *repCounters) error {
	old := b.Get(k)
	if old == nil {
		return nil
	}
	prev, _, err := decode(old)
	if err != nil {
		return fmt.Errorf("replica copy: %w", err)
	}
	if prev.Version > v {
		return nil
	}
	if c.pending == 0 || c.bytes < uint64(prev.size()) {
		return corruptf("replica counters (%d, %d bytes) below a copy being dropped", c.pending, c.bytes)
	}
	c.pending--
	c.bytes -= uint64(prev.size())
	return b.Delete(k)
}

// removeIfEmpty deletes the bucket of o when it holds no copy.
func removeIfEmpty(tx *bolt.Tx, o Origin) error {
	rb := tx.Bucket(bucketReplicas)
	b := rb.Bucket(o.bucket())
	if b == nil {
		return nil
	}
	if k, _ := b.Cursor().First(); k != nil {
		return nil
	}
	return rb.DeleteBucket(o.bucket())
}

// Adopt stores rs as this node's own pending writes, replacing a pending
// write of the key unless that one has a higher version, and removes the
// copies of rs's keys (at their versions or lower) from origin o's bucket
// (none when o is the zero Origin), all in one transaction. Adopted writes
// take over Appended from the copies they replace (so their age shows how
// long they have waited), and no bound applies: they were acknowledged
// already. It returns the records it stored.
func (j *Journal) Adopt(o Origin, rs []Record) ([]Record, error) {
	for i := range rs {
		if err := validate(&rs[i]); err != nil {
			return nil, err
		}
	}
	if o != (Origin{}) {
		if err := o.validate(); err != nil {
			return nil, err
		}
	}
	now := j.opts.Now().UTC()
	var adopted []Record
	err := j.update("adopt", func(tx *bolt.Tx) error {
		adopted = adopted[:0]
		rc, err := readRepCounters(tx)
		if err != nil {
			return err
		}
		var b *bolt.Bucket
		if o != (Origin{}) {
			b = tx.Bucket(bucketReplicas).Bucket(o.bucket())
		}
		for _, r := range rs {
			r.Attempts, r.LastError = 0, ""
			if r.Appended.IsZero() {
				r.Appended = now
			}
			k := nsKey(r.Namespace, r.Key)
			res, err := j.put(tx, k, r, false)
			if err != nil {
				return err
			}
			if res.out == outAdded || res.out == outReplaced {
				adopted = append(adopted, r)
			}
			if b != nil {
				if err := dropCopy(b, k, r.Version, &rc); err != nil {
					return err
				}
			}
		}
		if b != nil {
			if err := removeIfEmpty(tx, o); err != nil {
				return err
			}
		}
		return rc.write(tx)
	})
	return adopted, err
}
