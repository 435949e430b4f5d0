package engine

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/internal/store"
)

// Warm hand-over on a graceful leave: the leaving node still owns its
// partitions by its table until it is gone, so it keeps serving them; a
// new owner's pull of one takes its entries out of the store then, and
// Close waits (bounded) until every partition was pulled.

// holdOwned moves the store's entries of the given partitions, which this
// node still owns by its table, into the outbox: the node is leaving, and
// their new owner asks for them.
func (e *Engine) holdOwned(parts map[int]bool) {
	r := e.ring.Load()
	now := e.cfg.Now()
	until := now.Add(e.cfg.Warm.Window)
	e.cfg.Store.TakeFunc(func(skey string) bool { return parts[r.PartitionOf(skey)] }, func(skey string, en store.Entry, life time.Duration) {
		if e.visibleEntry(skey, en) {
			e.warm.out.hold(r.PartitionOf(skey), skey, en, life, now, until, e.cfg.Warm.MaxBytes)
		}
	})
	e.warm.out.mu.Lock()
	for p := range parts { // an empty partition is pulled too
		if e.warm.out.parts[p] == nil {
			e.warm.out.parts[p] = &heldPart{entries: map[string]heldEntry{}, until: until}
			e.warm.out.count.Store(int64(len(e.warm.out.parts)))
		}
	}
	e.warm.out.mu.Unlock()
}

// StartLeaving makes this node hand its partitions over as it leaves
// (graceful leave): from now on a new owner's pull of a partition this
// node still owns takes its entries out of the store, and AwaitTransfers waits
// for the pulls. Call it before announcing the leave.
func (e *Engine) StartLeaving() {
	r := e.ring.Load()
	if r == nil || e.cfg.Warm.Off {
		return
	}
	owed := map[int]bool{}
	for p := range r.PartitionCount() {
		if r.PartitionOwner(p).Name == e.cfg.Self {
			owed[p] = true
		}
	}
	ob := e.warm.out
	ob.mu.Lock()
	ob.owed = owed
	ob.mu.Unlock()
}

func (e *Engine) leaving() bool {
	ob := e.warm.out
	ob.mu.Lock()
	defer ob.mu.Unlock()
	return ob.owed != nil
}

// AwaitTransfers waits, after StartLeaving and the leave, until the members that
// took this node's partitions have pulled them all, or ctx ends, or
// anyonePulling (when not nil) reports that no member is left to pull (the
// others left or died too). It returns how many partitions were not
// pulled.
func (e *Engine) AwaitTransfers(ctx context.Context, anyonePulling func() bool) int {
	if !e.leaving() {
		return 0
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		e.warm.out.mu.Lock()
		left := len(e.warm.out.owed)
		e.warm.out.mu.Unlock()
		if left == 0 {
			return 0
		}
		if anyonePulling != nil && !anyonePulling() {
			return left
		}
		select {
		case <-ctx.Done():
			return left
		case <-tick.C:
		}
	}
}
