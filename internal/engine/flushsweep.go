package engine

import (
	"context"
	"sync"
	"time"
)

// sweeper frees the entries flushes hid (strategy.Namespace.SweepFlushed),
// one namespace at a time on one background goroutine. Sweeps asked for
// while it runs are done after it, each namespace once, and after a pause
// of sweepRest times the last sweep's length: frequent flushes (a prefix
// flush per tenant) cost a tenth of a core at most, not a core of
// back-to-back walks.
type sweeper struct {
	ctx    context.Context // cancelled by Close: a sweep in progress stops
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]bool
	running bool
}

// SweepFlushed frees, in the background, the entries of namespace ns that
// a flush hid: until then they hold memory and count in the store's
// entries (ringcachectl stats, the Redis door's DBSIZE), though no read
// sees them. A flush stays constant time; the sweep walks the store.
func (e *Engine) SweepFlushed(ns string) {
	s := &e.sweep
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	s.pending[ns] = true
	if !s.running {
		s.running = true
		e.bg.Go(e.sweepLoop)
	}
}

func (e *Engine) sweepLoop() {
	s := &e.sweep
	for {
		s.mu.Lock()
		name, found := "", false
		for n := range s.pending {
			name, found = n, true
			break
		}
		if !found || s.ctx.Err() != nil {
			s.running = false
			s.mu.Unlock()
			return
		}
		delete(s.pending, name)
		s.mu.Unlock()
		ns, ok := e.namespaces[name]
		if !ok {
			continue
		}
		start := time.Now()
		n := ns.SweepFlushed(s.ctx)
		took := time.Since(start)
		e.log.Info("entries a flush hid are freed", "namespace", name, "entries", n, "took", took.Round(time.Millisecond))
		rest := time.NewTimer(sweepRest * took)
		select {
		case <-rest.C:
		case <-s.ctx.Done():
			rest.Stop()
		}
	}
}

// sweepRest is the pause after a sweep, in multiples of its length.
const sweepRest = 9
