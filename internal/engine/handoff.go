package engine

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
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

// maxHandoffPeers bounds the previous owners remembered per partition.
const maxHandoffPeers = 3

// handoffs holds, per partition this node gained, the nodes that may still
// hold pending writes of it and until when to ask them. Immutable once
// published.
type handoffs struct {
	prev  [][]ring.Member
	until []time.Time
}

// handoffJournal is the write-behind journal as a namespace sees it. A
// write is appended here and copied to the key's replicas (replicate.go). A
// read sees the node's own pending write of a key, the copies it holds of
// the pending writes of departed nodes (takeover.go) and, while a handoff
// window is open for its partition, those of the partition's previous
// owners (or of members that returned after a partition); the newest
// version wins.
type handoffJournal struct {
	strategy.Journal
	e *Engine
}

// Append implements strategy.Journal: durable here and on the replicas.
func (h handoffJournal) Append(ctx context.Context, ns string, w strategy.Write) error {
	return h.replicatedAppend(ctx, ns, w)
}

func (h handoffJournal) Pending(ctx context.Context, ns, key string) (strategy.Write, bool, error) {
	w, ok, err := h.Journal.Pending(ctx, ns, key)
	if err != nil {
		return w, ok, err
	}
	if s := h.e.repl; s != nil {
		rw, rok, err := s.departedPending(ns, key)
		if err != nil {
			return w, ok, err
		}
		if rok && (!ok || rw.Version > w.Version) {
			w, ok = rw, true
		}
	}
	if pw, pok := h.e.lookupPrevious(ctx, ns, key); pok && (!ok || pw.Version > w.Version) {
		return pw, true, nil
	}
	return w, ok, nil
}

// recordHandoffs notes, for each partition this node owns in r and gained
// from old (a table this node routed by, or the coordinator's table r was
// computed from), which node owned it before, keeping the candidates of
// earlier moves whose window is still open.
func (e *Engine) recordHandoffs(old, r *ring.Ring, now time.Time) {
	if e.cfg.Journal == nil || old.PartitionCount() != r.PartitionCount() {
		return
	}
	self := e.cfg.Self
	parts := r.PartitionCount()
	next := &handoffs{prev: make([][]ring.Member, parts), until: make([]time.Time, parts)}
	cur := e.handoff.Load()
	for p := range parts {
		if r.PartitionOwner(p).Name != self {
			continue
		}
		var cands []ring.Member
		if cur != nil && now.Before(cur.until[p]) {
			cands = append(cands, cur.prev[p]...)
			next.until[p] = cur.until[p]
		}
		gained := old.PartitionOwner(p).Name != self
		if !gained && cands == nil {
			continue
		}
		if gained {
			next.until[p] = now.Add(e.cfg.HandoffWindow)
			if o := old.PartitionOwner(p); o.Name != self {
				cands = addCandidate(cands, o)
			}
		}
		next.prev[p] = cands
	}
	e.handoff.Store(next)
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
func (e *Engine) lookupPrevious(ctx context.Context, ns, key string) (strategy.Write, bool) {
	h, r := e.handoff.Load(), e.ring.Load()
	if h == nil || r == nil {
		return strategy.Write{}, false
	}
	p := r.PartitionOf(ring.Key(ns, key))
	if p >= len(h.prev) || e.cfg.Now().After(h.until[p]) {
		return strategy.Write{}, false
	}
	var best strategy.Write
	found := false
	for _, prev := range h.prev[p] {
		if prev.Name == e.cfg.Self || !r.Has(prev.Name) {
			continue // gone: it flushed on a graceful leave, or replays on restart
		}
		w, ok := e.lookupAt(ctx, prev, ns, key)
		if ok && (!found || w.Version > best.Version) {
			best, found = w, true
		}
	}
	return best, found
}

func (e *Engine) lookupAt(ctx context.Context, prev ring.Member, ns, key string) (strategy.Write, bool) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	resp, err := e.cfg.Peers.Lookup(ctx, prev, &pb.LookupRequest{Namespace: ns, Key: key, Hlc: e.Versions()})
	if err != nil {
		e.log.Debug("handoff lookup failed; reading the database", "previous_owner", prev.Name, "err", err)
		return strategy.Write{}, false
	}
	if err := e.ObserveClock(resp.Hlc); err != nil {
		e.log.Debug("handoff lookup answer ignored", "previous_owner", prev.Name, "err", err)
		return strategy.Write{}, false
	}
	if !resp.Pending {
		return strategy.Write{}, false
	}
	return strategy.Write{Key: key, Value: resp.Value, Delete: !resp.Found, Version: resp.Version, Elsewhere: true}, true
}

// LocalPending returns this node's own pending write-behind write of a key
// (Peer.Lookup serves it to a new owner); never a previous owner's.
func (e *Engine) LocalPending(ctx context.Context, ns, key string) (strategy.Write, bool, error) {
	if e.cfg.Journal == nil {
		return strategy.Write{}, false, nil
	}
	return e.cfg.Journal.AsQueue().Pending(ctx, ns, key)
}
