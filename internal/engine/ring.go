package engine

import "github.com/ringcache/ringcache/pkg/ring"

// SetRing routes by r from now on (unless a test pinned a ring). When
// partitions moved, the engine notes their previous owners (for pending
// write-behind writes), drops cached entries of partitions it gained or
// lost, and detaches loads started under the old ring.
func (e *Engine) SetRing(r *ring.Ring) { e.SetRingAfter(nil, r) }

// SetRingAfter is SetRing for a table computed from prev (the coordinator's
// previous table), which may not be the one this node routes by: a node
// that joins may get its first table, or skip one. The previous owners of
// the partitions it gains are prev's owners then, as well as its own
// table's.
func (e *Engine) SetRingAfter(prev, r *ring.Ring) {
	if e.frozen.Load() {
		return
	}
	old := e.ring.Load()
	moved := 0
	if old != nil {
		moved = len(ring.Diff(old, r))
	}
	now := e.cfg.Now()
	// The table the gained partitions were taken from: the coordinator's
	// previous one when known (a joining node has no table of its own).
	src := old
	if prev != nil && prev.PartitionCount() == r.PartitionCount() {
		src = prev
	}
	startPulls := e.beginWarm(src, r) // before r routes anything here
	if prev != nil && (old == nil || old.Version() != prev.Version()) && prev.PartitionCount() == r.PartitionCount() {
		e.recordHandoffs(prev, r, now)
	}
	if moved > 0 {
		// Before the new ring is visible: the previous owners to ask, and no
		// entry of a partition changing hands.
		e.recordHandoffs(old, r, now)
		e.dropUnowned(old, r)
	}
	if e.repl != nil {
		// Also before: the replica table of r, and reads of the copies of
		// nodes that r no longer holds.
		e.repl.ringChanged(old, r)
	}
	e.ring.Store(r)
	if e.repl != nil {
		e.repl.poke() // re-replicate and take over on r
	}
	e.notes.notify()
	if e.cfg.Hot != nil {
		e.cfg.Hot.RingChanged(r, moved > 0)
	}
	if moved > 0 {
		// Loads that started under the old ring must not cache, and entries
		// cached in the meantime (a forwarded call) go too.
		for _, ns := range e.namespaces {
			ns.ForgetLoads()
		}
		e.dropUnowned(old, r)
	}
	if startPulls != nil {
		startPulls()
	}
	if old != nil {
		e.log.Info("ring rebuilt", "version", r.Version(), "members", len(r.Members()), "moved_partitions", moved)
	}
}

// dropUnowned removes cached entries of partitions this node does not own
// in r, or did not own in old. An entry of a partition that moved away and
// comes back later would otherwise be served although the key was written
// on another owner meanwhile. With the warm hand-over on, the entries of
// partitions it lost go to the outbox for their new owners (warm_out.go).
func (e *Engine) dropUnowned(old, r *ring.Ring) {
	if !e.cfg.Warm.Off {
		held, dropped := e.holdLost(old, r)
		if held+dropped > 0 {
			e.log.Info("moved entries of partitions that changed owner", "held_for_new_owners", held, "dropped", dropped)
		}
		return
	}
	self := e.cfg.Self
	dropped := e.cfg.Store.DeleteFunc(func(skey string) bool {
		p := r.PartitionOf(skey) // store keys are routing keys
		return r.PartitionOwner(p).Name != self || old.PartitionOwner(p).Name != self
	})
	if dropped > 0 {
		e.log.Info("dropped entries of partitions that changed owner", "entries", dropped)
	}
}
