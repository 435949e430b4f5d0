package strategy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

type loadResult struct {
	value   []byte
	found   bool
	version uint64
	epoch   uint32        // the flush epoch before the read began
	cost    time.Duration // how long the read took
	// held: the entry came from a previous owner (adopt.go), with its
	// life left and its load cost.
	held     bool
	life     time.Duration
	heldCost LoadCost
	noCache  bool // answered, not cached: this node does not own the key, or another node's pending write
	cached   bool // answered from the cache: another load had just cached it
}

// fetch reads the key's current value: a write still queued in the
// write-behind journal wins over the database, so a load never shadows an
// acknowledged write, even after its entry was evicted from memory.
//
// A miss (not a refresh) of a key whose partition just moved here asks
// the partition's previous owner next (adopt.go).
func (n *Namespace) fetch(ctx context.Context, key string, miss bool) (loadResult, error) {
	if n.journal != nil {
		w, ok, err := n.journal.Pending(ctx, n.p.Name, key)
		if err != nil {
			return loadResult{}, fmt.Errorf("%w: read the write-behind journal of namespace %q: %w", ErrBackend, n.p.Name, err)
		}
		if ok {
			n.c.pendingHits.Add(1)
			return loadResult{value: w.Value, found: !w.Delete, version: w.Version, noCache: w.Elsewhere}, nil
		}
	}
	if miss {
		if r, ok := n.fromPrevious(ctx, key); ok {
			return r, nil
		}
	}
	if n.p.Read != ReadThrough {
		return loadResult{}, nil
	}
	if n.dbSlots != nil { // a share of the database's connections
		select {
		case n.dbSlots <- struct{}{}:
			defer func() { <-n.dbSlots }()
		case <-ctx.Done():
			return loadResult{}, fmt.Errorf("%w: waiting for a database slot of namespace %q: %w", ErrBackend, n.p.Name, ctx.Err())
		}
	}
	n.c.loads.Add(1)
	ctx, span := n.startSpan(ctx, spanLoad)
	v, found, err := n.loader.Load(ctx, key)
	endSpan(span, err, attrFound.Bool(found))
	if err != nil {
		n.c.loadErrors.Add(1)
		return loadResult{}, fmt.Errorf("%w: load from namespace %q: %w", ErrBackend, n.p.Name, err)
	}
	return loadResult{value: v, found: found}, nil
}

// fetchGuarded runs fetch with the namespace's lifetime context, detached
// from the caller who started it (a load is shared by every caller of the
// key, so one caller giving up does not end it) but not from its trace, and
// without letting a panicking loader escape (a singleflight function
// panics on a goroutine of its own, which would take the node down). It
// reports the stripe generation it started at. The caller has entered
// n.life and exits it only after caching the result, so nothing of a load
// touches the store after Close.
func (n *Namespace) fetchGuarded(ctx context.Context, key, skey string, miss bool) (r loadResult, gen uint64, err error) {
	defer func() {
		if p := recover(); p != nil {
			n.c.loadErrors.Add(1)
			err = fmt.Errorf("%w: load from namespace %q panicked: %v", ErrBackend, n.p.Name, p)
		}
	}()
	gen = n.gen[n.stripe(skey)].Load()
	epoch, start := n.stamp(), n.clock.NowNano()
	// The load ends at LoadTimeout, when the namespace closes, or when ctx
	// ends (no caller waits for it any more), whichever comes first.
	lctx, cancel := context.WithTimeout(ctx, n.p.LoadTimeout)
	defer cancel()
	stop := context.AfterFunc(n.life.ctx, cancel)
	defer stop()
	r, err = n.fetch(lctx, key, miss)
	r.epoch, r.cost = epoch, time.Duration(n.clock.NowNano()-start)
	if err == nil {
		n.cost.observe(r.cost)
	}
	return r, gen, err
}

// install caches a fetched result unless a write touched the key's stripe
// since gen was read.
func (n *Namespace) install(skey string, gen uint64, r loadResult, replace bool) {
	if r.noCache {
		return
	}
	i := n.stripe(skey)
	n.genMu[i].Lock()
	defer n.genMu[i].Unlock()
	if n.gen[i].Load() != gen {
		return
	}
	defer n.changed(skey[len(n.prefix):])
	var e Entry
	switch {
	case r.held: // a previous owner's entry keeps its kind and life left
		e = Entry{Value: r.value, Found: r.found, TTL: r.life, Version: r.version}
	case r.found:
		e = Entry{Value: r.value, Found: true, TTL: n.ttl(0), Version: r.version}
	case n.p.NegativeTTL > 0:
		e = Entry{TTL: n.p.NegativeTTL, Version: r.version}
	case replace:
		n.store.Delete(skey)
		return
	default:
		return
	}
	e.Epoch, e.Cost = r.epoch, CostOf(r.cost)
	if r.held {
		e.Cost = r.heldCost
	}
	if replace {
		n.putIfNewer(skey, e)
	} else {
		n.putIfAbsent(skey, e)
	}
}

func (n *Namespace) load(ctx context.Context, key, skey string) ([]byte, bool, error) {
	r, err := n.loadResult(ctx, key, skey)
	return r.value, r.found, err
}

// loadResult is load, returning the whole result: its version tells a
// pending write (non-zero) from a database row.
func (n *Namespace) loadResult(ctx context.Context, key, skey string) (loadResult, error) {
	// led is set in the function only by the caller that runs the load.
	// The function runs on a goroutine of its own, with a context that
	// ends when no caller waits any more: a load whose callers all gave up
	// is cancelled rather than left to run for LoadTimeout (a flood of
	// cold keys with short deadlines would otherwise pile up loads). Its
	// result is then not cached; the next caller starts a new load.
	var led atomic.Bool
	n.c.waiting.Add(1)
	r, _, err := n.flight.Do(ctx, n.flightKey(skey), func(fctx context.Context) (loadResult, error) {
		led.Store(true)
		// A caller that missed just before the key's previous load cached
		// its result joins no flight: that one has ended. It answers from
		// the cache rather than load again (as groupcache does).
		if e, ok := n.lookup(skey); ok {
			return loadResult{value: e.Value, found: e.Found, version: e.Version, cached: true}, nil
		}
		if running := n.inflight.Add(1); running > int64(n.p.MaxLoads) {
			n.inflight.Add(-1)
			n.c.loadsRefused.Add(1)
			return loadResult{}, fmt.Errorf("%w: %d loads in flight in namespace %q (max_concurrent_loads); retry shortly", ErrBackpressure, n.p.MaxLoads, n.p.Name)
		}
		defer n.inflight.Add(-1)
		if !n.life.enter() {
			return loadResult{}, n.errClosed()
		}
		defer n.life.exit()
		r, gen, err := n.fetchGuarded(fctx, key, skey, true)
		if err != nil {
			return loadResult{}, err
		}
		n.install(skey, gen, r, false)
		return r, nil
	})
	n.c.waiting.Add(-1)
	if (!led.Load() || r.cached) && (err == nil || ctx.Err() == nil) {
		n.c.deduped.Add(1)
	}
	if err != nil {
		if ctx.Err() != nil {
			return loadResult{}, ctx.Err()
		}
		return loadResult{}, err
	}
	return r, nil
}

// refreshAsync reloads a hot entry in the background, at most once at a
// time per key and at most MaxRefreshes at a time in the namespace; the
// entry keeps serving until the new value replaces it. early marks a
// refresh that XFetch chose.
func (n *Namespace) refreshAsync(key, skey string, early bool) {
	if len(n.refreshN) == cap(n.refreshN) { // cheap early out; checked again below
		n.c.refreshSkips.Add(1)
		return
	}
	n.refresh.DoChan(skey, func() (any, error) {
		select {
		case n.refreshN <- struct{}{}:
		default:
			n.c.refreshSkips.Add(1)
			return nil, nil
		}
		defer func() { <-n.refreshN }()
		if !n.life.enter() {
			return nil, nil // closed: no refresh
		}
		defer n.life.exit()
		// A reader that saw the entry just before the previous refresh
		// replaced it must not start another one.
		if e, life, ok := n.lookupWithLife(skey); !ok || !n.refreshPossible(e, life) {
			return nil, nil
		}
		n.c.refreshes.Add(1)
		if early {
			n.c.xfetches.Add(1)
		}
		r, gen, err := n.fetchGuarded(context.Background(), key, skey, false)
		if err == nil {
			n.install(skey, gen, r, true)
		}
		return nil, err
	})
}

func (n *Namespace) errClosed() error { return fmt.Errorf("%w: %q", ErrClosed, n.p.Name) }

// lifetime tracks a namespace's background work: every load and refresh
// enters it while it runs, and close cancels them and waits.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (l *lifetime) init() { l.ctx, l.cancel = context.WithCancel(context.Background()) }

// enter reports whether work may start; if so, the caller must exit.
func (l *lifetime) enter() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	return true
}

func (l *lifetime) exit() { l.wg.Done() }

func (l *lifetime) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}
