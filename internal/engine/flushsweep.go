package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/invalwatch"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// sweeper frees the entries flushes hid (strategy.SweepFlushed) on one
// background goroutine, one walk of the store for all the namespaces
// flushed since the last walk. Flushes while it walks are swept by the next
// walk, after a pause of sweepRest times the last walk's length: frequent
// flushes (a prefix flush per tenant) cost a tenth of a core at most, not a
// core of back-to-back walks.
type sweeper struct {
	ctx    context.Context // cancelled by Close: a sweep in progress stops
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]bool
	running bool

	walks atomic.Uint64 // walks of the store so far
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
	// The flushes of one FLUSHALL, one call per namespace, gather first.
	if invalwatch.Sleep(s.ctx, sweepGather) != nil {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
		return
	}
	for {
		s.mu.Lock()
		if len(s.pending) == 0 || s.ctx.Err() != nil {
			s.running = false
			s.mu.Unlock()
			return
		}
		var names []string
		var nss []*strategy.Namespace
		for name := range s.pending {
			if ns, ok := e.namespaces[name]; ok {
				names = append(names, name)
				nss = append(nss, ns)
			}
		}
		clear(s.pending)
		s.mu.Unlock()
		if len(nss) == 0 {
			continue
		}
		start := time.Now()
		n := strategy.SweepFlushed(s.ctx, nss...)
		took := time.Since(start)
		s.walks.Add(1)
		slices.Sort(names)
		e.log.Info("entries flushes hid are freed", "namespaces", names, "entries", n, "took", took.Round(time.Millisecond))
		_ = invalwatch.Sleep(s.ctx, max(sweepRest*took, sweepGather))
	}
}

// sweepRest is the pause after a sweep, in multiples of its length.
const sweepRest = 9

// sweepGather is how long flushes gather before a walk: a FLUSHALL flushes
// each namespace with a call of its own, on every node.
const sweepGather = 50 * time.Millisecond
