package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
)

// A process stopped for longer than failure detection takes (a SIGSTOP, a
// frozen VM or container, a stall) wakes up routing by the table it had
// and holding what it cached, while its peers may have declared it dead,
// routed without it and written its keys elsewhere. The table that takes
// it back drops its cache (Rejoined), but that table comes a moment after
// the wake (about 100 ms in the chaos suite), and until then it would
// serve values older than writes the cluster acknowledged. The stall watch
// sees the gap in its own ticks and hides every cached entry before the
// first op after the wake is served. It then asks the peers which table
// they route by: a newer one with the node is installed before any op is
// served; under one without it the node owns nothing, and until a table
// takes it back it sends each of its clients' ops to the key's owner by
// that table, since a write it took as their owner would be hidden from
// every read served there.

// stallWatch is the engine's watch for stalls of its own process.
type stallWatch struct {
	after atomic.Int64 // nanoseconds; 0: not watching
	tick  atomic.Int64 // monotonic nanoseconds of the last tick or wake
	mu    sync.Mutex   // one wake at a time; ops that saw the gap wait for it
	wakes atomic.Uint64
	wake  StallHooks
	out   atomic.Pointer[leftOut]
}

// StallHooks are what a node does after a wake (WatchStalls), before any
// op is served.
type StallHooks struct {
	// Confirm asks the peers for their table, installs a newer one that
	// has this node, and returns theirs when it lacks the node
	// (table.Coordinator.Confirm).
	Confirm func() (peers *ring.Ring)
	// LeftOut is called once Confirm's answer has made the node left out
	// (LeftOut, Ready false): the node reports not serving from then on.
	LeftOut func()
}

// leftOut is what a wake found: the cluster routes by peers, a table
// without this node, while it routed by routed. While it still does, its
// clients' ops are routed by peers.
type leftOut struct {
	routed, peers *ring.Ring
}

// minStallAfter is the least gap WatchStalls takes for a stall: tests run
// gossip timers of a fraction of a second on busy machines.
const minStallAfter = 2 * time.Second

var monoBase = time.Now()

// mono returns monotonic nanoseconds (the engine's clock may be a test's).
func mono() int64 { return int64(time.Since(monoBase)) }

// WatchStalls starts the stall watch: a gap of after or more between the
// watch's ticks (every after/8), seen by the watch or by an op, hides every
// cached entry (a flush of every namespace, constant time), the entries
// held for new owners and the hot cache, before any op is served again.
// Give it less than the cluster takes to declare a silent node dead (three
// quarters of membership's SuspicionTimeout): a process stopped for less is
// never taken out of its peers' tables, and only pays a cold cache. It
// takes at least minStallAfter; 0 or less does nothing.
//
// After a wake, and before any op is served, hooks.Confirm (if not nil)
// asks the peers for their table, installs a newer one that has this node,
// and returns theirs when it lacks the node (table.Coordinator.Confirm):
// until the node routes by another table, its clients' ops go to their
// owners by that one (Execute), and it reports not ready (Ready, LeftOut),
// which hooks.LeftOut (if not nil) is told.
func (e *Engine) WatchStalls(after time.Duration, hooks StallHooks) {
	if after <= 0 {
		return
	}
	after = max(after, minStallAfter)
	if e.stall.after.Load() != 0 {
		return // watching already: the hooks are read by checkStall
	}
	e.stall.wake = hooks // published by the compare-and-swap below
	e.stall.tick.Store(mono())
	if !e.stall.after.CompareAndSwap(0, int64(after)) {
		return // watching already
	}
	e.bg.Go(func() {
		t := time.NewTicker(after / 8)
		defer t.Stop()
		for {
			select {
			case <-e.warm.ctx.Done():
				return
			case <-t.C:
				e.beat()
			}
		}
	})
}

// beat is the watch's tick. It moves the tick forward only from the value
// it read, to a time read before: a process stopped between the two
// leaves the gap for the next op (or tick) to see, rather than hide it.
func (e *Engine) beat() {
	last := e.stall.tick.Load()
	if now := mono(); now-last < e.stall.after.Load() {
		e.stall.tick.CompareAndSwap(last, now)
		return
	}
	e.checkStall()
}

// checkStall hides every cached entry when the watch's last tick is older
// than its gap: the process was stopped. Execute calls it before routing
// anything.
func (e *Engine) checkStall() {
	after := e.stall.after.Load()
	if after == 0 {
		return
	}
	last := e.stall.tick.Load()
	now := mono()
	if now-last < after {
		return
	}
	s := &e.stall
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tick.Load() != last {
		return // the watch, or another op, saw this gap
	}
	e.woke(time.Duration(now - last))
	if s.wake.Confirm != nil {
		r := e.ring.Load()
		if peers := s.wake.Confirm(); peers != nil {
			s.out.Store(&leftOut{routed: r, peers: peers}) // a table installed meanwhile is another: no effect
			if s.wake.LeftOut != nil {
				s.wake.LeftOut() // after the Store: a health update racing it then reads not ready
			}
		}
	}
	s.tick.Store(mono())
}

// LeftOut reports whether a wake found the cluster routing by a table
// without this node, and the node still routes by the one it had: until a
// table takes it back it owns nothing, and reports not ready.
func (e *Engine) LeftOut() bool { return e.peersTable(e.ring.Load()) != nil }

// Routing returns the table the node routes its clients' ops by: its own,
// or while a wake found it left out (LeftOut), the one its peers route by,
// in which it owns nothing. The Redis door shows cluster clients this one.
func (e *Engine) Routing() *ring.Ring { return e.routedBy(e.ring.Load()) }

// routedBy returns the table the node routes its clients' ops by while it
// routes by r: the peers' table while a wake found it left out, else r.
func (e *Engine) routedBy(r *ring.Ring) *ring.Ring {
	if peers := e.peersTable(r); peers != nil {
		return peers
	}
	return r
}

// peersTable returns the table a wake found the cluster routing by, without
// this node, if the node still routes by r, the one it had then; else nil.
func (e *Engine) peersTable(r *ring.Ring) *ring.Ring {
	if o := e.stall.out.Load(); o != nil && r != nil && o.routed == r {
		return o.peers
	}
	return nil
}

// Stalled makes the stall watch see the process stopped for d, as if no
// tick had come since: tests use it, since a test cannot stop its own
// process (the e2e and chaos suites stop real ones).
func (e *Engine) Stalled(d time.Duration) { e.stall.tick.Store(mono() - int64(d)) }

// woke hides what this node cached before a stall of gap, and, as a
// merge does for returning members, makes write-behind misses ask the
// other members for pending writes for HandoffWindow: they may have
// taken this node's keys over and hold acknowledged writes of them that
// the database has not seen.
func (e *Engine) woke(gap time.Duration) {
	if r := e.ring.Load(); r != nil {
		e.addHandoffs(e.others(r))
	}
	for name, ns := range e.namespaces {
		if _, err := ns.Flush(""); err == nil {
			e.SweepFlushed(name)
		}
	}
	e.warm.out.empty()
	if e.cfg.Hot != nil {
		e.cfg.Hot.Reset()
	}
	e.stall.wakes.Add(1)
	e.log.Warn("this process was stopped for longer than its peers take to suspect it (a SIGSTOP, a frozen VM or container, a stall); hid every cached entry before serving again, since they may have declared it dead and written its keys meanwhile",
		"stopped", gap.Round(time.Millisecond))
}
