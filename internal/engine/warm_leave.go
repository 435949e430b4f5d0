package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
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

// handOver records that the new owner named to is taking the given
// partitions, which this node still owns by its table as it leaves: from
// now on this node sends their ops there (handedTo) instead of serving
// them, so the two never both accept writes of a partition once its
// entries have moved. A new owner this node's table does not name is not
// recorded (it serves on).
func (e *Engine) handOver(parts map[int]bool, to string) {
	r := e.ring.Load()
	var m ring.Member
	for _, x := range r.Members() {
		if x.Name == to {
			m = x
		}
	}
	if m.Name == "" || m.Name == e.cfg.Self {
		return
	}
	ob := e.warm.out
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if ob.handed == nil {
		ob.handed = map[int]ring.Member{}
	}
	for p := range parts {
		ob.handed[p] = m
	}
	ob.handing.Store(int64(len(ob.handed)))
}

// handedTo returns the member a leaving node handed the partition of key
// in namespace ns to, if it did.
func (e *Engine) handedTo(ns, key string) (ring.Member, bool) {
	ob := e.warm.out
	if ob.handing.Load() == 0 {
		return ring.Member{}, false
	}
	r := e.ring.Load()
	if r == nil {
		return ring.Member{}, false
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	m, ok := ob.handed[r.PartitionOfKey(ns, key)]
	return m, ok
}

// writeGate counts the writes a node serves itself, in two phases, so
// that a hand-over can wait for the writes that began before it (they may
// still update the store after its entries were taken out) and not for
// those that begin after (they see the table that moved the partition, or
// that a leaving node handed it over).
type writeGate struct {
	mu    sync.Mutex // one drain at a time
	phase atomic.Uint32
	n     [2]atomic.Int64
}

// drainTimeout bounds a hand-over's wait for the writes in flight.
const drainTimeout = time.Second

func (g *writeGate) enter() uint32 {
	for {
		ph := g.phase.Load()
		g.n[ph&1].Add(1)
		if g.phase.Load() == ph {
			return ph
		}
		g.n[ph&1].Add(-1)
	}
}

// drain starts a new phase and waits until the writes of the one before
// have ended, or drainTimeout passes.
func (g *writeGate) drain() {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.phase.Add(1) - 1
	deadline := time.Now().Add(drainTimeout)
	for g.n[old&1].Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// gateWrite counts op, when it writes, as a write in flight, and returns
// the done that ends it, and the func that ends it without a result (the
// op is sent on instead).
func (e *Engine) gateWrite(k Kind, done func(int, Result)) (func(int, Result), func()) {
	ob := e.warm.out
	if !k.write() {
		return done, func() {}
	}
	ph := ob.gate.enter()
	var once sync.Once
	exit := func() { once.Do(func() { ob.gate.n[ph&1].Add(-1) }) }
	return func(i int, r Result) { exit(); done(i, r) }, exit
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
