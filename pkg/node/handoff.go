package node

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// DefaultHandoffWindow is how long a node asks a partition's previous owner
// for pending write-behind writes after taking the partition over. The
// previous owner flushes within its flush interval unless its database is
// down; a write still pending on it after the window is not seen by reads
// until it reaches the database.
const DefaultHandoffWindow = time.Minute

// lookupTimeout bounds one handoff lookup: a read must not hang on a
// previous owner that is gone.
const lookupTimeout = time.Second

// handoffs holds, per partition this node gained, the nodes that may still
// hold pending writes of it and until when to ask them. Immutable once
// published.
type handoffs struct {
	prev  [][]ring.Member
	until []time.Time
}

// maxHandoffPeers bounds the previous owners remembered per partition.
const maxHandoffPeers = 3

// recordHandoffs notes, for each partition this node owns in r and gained
// recently, which nodes may have owned it before: the owner in old, and the
// owner in the ring of the other members (the cluster's ring before this
// node joined, which this node never saw while it was starting alone).
func (n *Node) recordHandoffs(old, r *ring.Ring, now time.Time) {
	if n.flusher == nil || old.PartitionCount() != r.PartitionCount() {
		return
	}
	self := n.cfg.Name
	var others []ring.Member
	for _, m := range r.Members() {
		if m.Name != self {
			others = append(others, m)
		}
	}
	without, _ := ring.New(n.cfg.Ring, others, 0) // nil when this node is alone
	parts := r.PartitionCount()
	next := &handoffs{prev: make([][]ring.Member, parts), until: make([]time.Time, parts)}
	cur := n.handoff.Load()
	for p := range parts {
		if r.PartitionOwner(p).Name != self {
			continue
		}
		var cands []ring.Member
		if cur != nil && now.Before(cur.until[p]) {
			cands = append(cands, cur.prev[p]...)
			next.until[p] = cur.until[p]
		}
		gained := old.PartitionOwner(p).Name != self || len(old.Members()) == 1
		if !gained && cands == nil {
			continue
		}
		if gained {
			next.until[p] = now.Add(n.cfg.HandoffWindow)
			if o := old.PartitionOwner(p); o.Name != self {
				cands = addCandidate(cands, o)
			}
		}
		if without != nil {
			cands = addCandidate(cands, without.PartitionOwner(p))
		}
		next.prev[p] = cands
	}
	n.handoff.Store(next)
}

func addCandidate(cands []ring.Member, m ring.Member) []ring.Member {
	for _, c := range cands {
		if c.Name == m.Name {
			return cands
		}
	}
	if len(cands) == maxHandoffPeers {
		cands = cands[1:]
	}
	return append(cands, m)
}

// lookupPrevious asks the previous owners of key's partition for a pending
// write of key and returns the newest one. Any failure counts as nothing
// pending.
func (n *Node) lookupPrevious(ctx context.Context, ns, key string) (journal.Record, bool) {
	h, r := n.handoff.Load(), n.ring.Load()
	if h == nil || r == nil {
		return journal.Record{}, false
	}
	p := r.PartitionOf(routingKey(ns, key))
	if p >= len(h.prev) || time.Now().After(h.until[p]) {
		return journal.Record{}, false
	}
	var best journal.Record
	found := false
	for _, prev := range h.prev[p] {
		if prev.Name == n.cfg.Name || !r.Has(prev.Name) {
			continue // gone: it flushed on a graceful leave, or replays on restart
		}
		rec, ok := n.lookupAt(ctx, prev, ns, key)
		if ok && (!found || rec.Version > best.Version) {
			best, found = rec, true
		}
	}
	return best, found
}

func (n *Node) lookupAt(ctx context.Context, prev ring.Member, ns, key string) (journal.Record, bool) {
	cc, err := n.peers.conn(prev.Addr)
	if err != nil {
		return journal.Record{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	resp, err := pb.NewPeerClient(cc).Lookup(ctx, &pb.LookupRequest{Namespace: ns, Key: key, Hlc: n.clock.Now()})
	if err != nil {
		n.log.Debug("handoff lookup failed; reading the database", "previous_owner", prev.Name, "err", err)
		return journal.Record{}, false
	}
	n.clock.Observe(resp.Hlc)
	if !resp.Pending {
		return journal.Record{}, false
	}
	return journal.Record{Namespace: ns, Key: key, Value: resp.Value, Delete: !resp.Found, Version: resp.Version}, true
}

// Lookup serves a new owner's handoff lookup from this node's journal.
func (s *peerServer) Lookup(_ context.Context, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	n := s.n
	n.clock.Observe(req.Hlc)
	resp := &pb.LookupResponse{}
	if n.cfg.Journal != nil {
		rec, ok, err := n.cfg.Journal.Pending(req.Namespace, req.Key)
		if err != nil {
			return nil, toStatus(err)
		}
		if ok {
			resp.Pending, resp.Found, resp.Value, resp.Version = true, !rec.Delete, rec.Value, rec.Version
		}
	}
	resp.Hlc = n.clock.Now()
	return resp, nil
}
