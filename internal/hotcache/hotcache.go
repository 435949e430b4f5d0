// Package hotcache is a node's cache of the keys other nodes own: a node
// that is asked often for a key another node owns keeps the owner's answer for a short while and answers the key itself,
// as groupcache's hot cache does, but promoted by request rate rather than
// at random, and invalidated by the owner.
//
//   - Every Get of a key this node does not own is counted in a rateSketch.
//     A key at Config.MinRate or more is hot: the answer of its forward is
//     kept (bytes-bounded, Config.TTL at most), and later Gets are answered
//     from it without a forward.
//   - The node keeps a WatchInvalidations stream open to each owner it holds
//     (or has lately tried to hold) hot entries of, and drops the keys the
//     owner reports. An entry is served only while its owner's stream is
//     live and unbroken since the entry was filled, and while the ring still
//     names that owner; a ring change that moves partitions drops them all.
//   - A fill is stored only if no invalidation of its key arrived since its
//     forward started (fillguard), so a value changed during the forward is
//     never installed. Sets and Deletes forwarded through this node drop the
//     key's entry when the owner answers, so a client reads its own writes
//     through the node it wrote through.
//
// Staleness: a write through another node is seen here once its
// invalidation has crossed the owner's stream (docs/architecture.md has the
// measured figures); Config.TTL bounds it should the stream stall without
// breaking, or the rings disagree about the owner.
package hotcache

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/maypok86/otter/v2"

	"github.com/ringcache/ringcache/internal/fillguard"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

const (
	// DefaultMinRate is the Gets per second of one key through a
	// non-owner at which the key is hot.
	DefaultMinRate = 100
	// DefaultTTL bounds how long a hot entry is served.
	DefaultTTL = time.Second

	// hotWindow is the length of the rate sketch's windows.
	hotWindow = time.Second
	// hotWatchIdle is how long a stream to an owner stays open after the
	// last attempt to fill an entry of it (at least twice the TTL, so no
	// entry outlives its stream).
	hotWatchIdle = 30 * time.Second
)

// Cache is safe for concurrent use. Its zero value is not usable; see New.
type Cache struct {
	log   *slog.Logger
	ttl   time.Duration
	idle  time.Duration
	open  Source
	cache *otter.Cache[string, entry]
	rate  *rateSketch
	guard fillguard.Guard
	epoch atomic.Uint64 // bumped by resets: entries and fills of older epochs are dead
	clock otter.Clock   // the node's clock; nil: base and the monotonic clock
	base  time.Time

	ctx     context.Context // ends on close; parent of every watch
	cancel  context.CancelFunc
	mu      sync.RWMutex
	watches map[string]*hotWatch // by member name
	wg      sync.WaitGroup

	hits, fills, invals, resets atomic.Uint64
}

// entry is one cached answer of an owner. value is shared with callers
// and never modified.
type entry struct {
	value []byte
	found bool
	w     *hotWatch // the owner's stream, as of the fill
	gen   uint64    // w.gen at the fill
	epoch uint64
}

// Token is what a Get records before its forward, to fill afterwards.
type Token struct {
	guard fillguard.Token
	w     *hotWatch
	gen   uint64
	epoch uint64
}

// Source opens a WatchInvalidations stream to a peer: the node's peer
// connections in production, a fake in tests.
type Source func(ctx context.Context, to ring.Member) (pb.Cache_WatchInvalidationsClient, error)

// Config configures a Cache. MaxBytes and Open are required.
type Config struct {
	// MaxBytes bounds the entries as the store charges them (store.Charge).
	MaxBytes uint64
	// MinRate is the Gets per second of one key at which it is cached;
	// default DefaultMinRate. Rates below 2 act as 2.
	MinRate float64
	// TTL bounds how long an entry is served; default DefaultTTL.
	TTL time.Duration
	// Clock is the entries' time source; nil means the wall clock.
	Clock otter.Clock
	// Open opens an owner's invalidation stream.
	Open   Source
	Logger *slog.Logger
}

// New returns a Cache; Run drives its windows, Close ends it.
func New(cfg Config) *Cache {
	if cfg.MinRate == 0 {
		cfg.MinRate = DefaultMinRate
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	maxBytes, ttl, clock := cfg.MaxBytes, cfg.TTL, cfg.Clock
	h := &Cache{
		log: cfg.Logger, ttl: ttl, idle: max(hotWatchIdle, 2*ttl), open: cfg.Open,
		rate: newRateSketch(cfg.MinRate, hotWindow), clock: cfg.Clock, base: time.Now(), watches: map[string]*hotWatch{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.cache = otter.Must(&otter.Options[string, entry]{
		MaximumWeight: maxBytes,
		Weigher: func(k string, e entry) uint32 {
			return store.Charge(len(k), cap(e.value))
		},
		ExpiryCalculator: otter.ExpiryWriting[string, entry](ttl),
		Clock:            clock,
		Logger:           &otter.NoopLogger{},
	})
	return h
}

// now is the hot cache's clock, in nanoseconds: the node's (so tests drive
// its windows), else monotonic time since New.
func (h *Cache) now() int64 {
	if h.clock != nil {
		return h.clock.NowNano()
	}
	return int64(time.Since(h.base)) // monotonic
}

// Cached reports whether a Get of rk (a routing key owned by owner) would
// be answered from the cache now; it does not count as a request.
func (h *Cache) Cached(rk string, owner ring.Member) bool {
	_, ok := h.lookup(rk, owner)
	return ok
}

// lookup returns the entry of rk (a routing key owned by owner) if it may
// be served.
func (h *Cache) lookup(rk string, owner ring.Member) (entry, bool) {
	e, ok := h.cache.GetIfPresent(rk)
	if !ok || e.w.member.Name != owner.Name || !e.w.live.Load() || e.w.gen.Load() != e.gen || h.epoch.Load() != e.epoch {
		return entry{}, false
	}
	return e, true
}

// get returns the hot entry of rk (a routing key owned by owner) if one may
// be served, and then counts the request.
func (h *Cache) Get(rk string, owner ring.Member) ([]byte, bool, bool) {
	e, ok := h.lookup(rk, owner)
	if !ok {
		return nil, false, false
	}
	h.rate.add(xxhash.Sum64String(rk), h.now())
	h.hits.Add(1)
	return e.value, e.found, true
}

// admit counts a Get of rk that goes to its owner and, when rk is hot,
// returns a token to fill its entry with the owner's answer. Take it before
// the forward.
func (h *Cache) Admit(rk string, owner ring.Member) (Token, bool) {
	if !h.rate.add(xxhash.Sum64String(rk), h.now()) {
		return Token{}, false
	}
	w := h.watch(owner)
	if w == nil {
		return Token{}, false
	}
	// gen before live: a stream that breaks in between fails the fill.
	t := Token{guard: h.guard.Token(rk), w: w, gen: w.gen.Load(), epoch: h.epoch.Load()}
	if !w.live.Load() {
		return Token{}, false // not subscribed yet: changes could be missed
	}
	return t, true
}

// fill stores the owner's answer for rk unless rk, its owner's stream or
// the ring changed since t was taken.
func (h *Cache) Fill(rk string, t Token, value []byte, found bool) {
	h.guard.Fill(t.guard, func() {
		if !t.w.live.Load() || t.w.gen.Load() != t.gen || h.epoch.Load() != t.epoch {
			return
		}
		h.cache.Set(rk, entry{value: value, found: found, w: t.w, gen: t.gen, epoch: t.epoch})
		h.fills.Add(1)
	})
}

// invalidate drops rk's entry and fails the fills of forwards in flight.
func (h *Cache) Invalidate(rk string) {
	h.guard.Invalidate(rk, func() { h.cache.Invalidate(rk) })
}

// Reset drops every entry, and fills in flight. It counts only when there
// may have been entries: some owner had a stream.
func (h *Cache) Reset() {
	h.epoch.Add(1)
	h.mu.RLock()
	watched := len(h.watches) > 0
	h.mu.RUnlock()
	if watched {
		h.resets.Add(1)
	}
	h.cache.InvalidateAll()
}

// drop removes the entries filled from w; they are dead already (w's
// generation moved on), this frees their memory.
func (h *Cache) drop(w *hotWatch) {
	for k, e := range h.cache.All() {
		if e.w == w {
			h.cache.Invalidate(k)
		}
	}
}

// ringChanged is told of every new ring: streams to nodes that left it
// close, and when partitions moved every entry goes (an owner that lost a
// key no longer reports its changes).
func (h *Cache) RingChanged(r *ring.Ring, moved bool) {
	if moved {
		h.Reset()
	}
	live := map[string]string{}
	for _, m := range r.Members() {
		live[m.Name] = m.Addr
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, w := range h.watches {
		if addr, ok := live[name]; !ok || addr != w.member.Addr {
			h.stopLocked(w)
		}
	}
}

// run rotates the rate sketch and closes idle streams until stop closes.
func (h *Cache) Run(stop <-chan struct{}) {
	t := time.NewTicker(hotWindow)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		h.tick(h.now())
	}
}

// tick starts the sketch's next window and closes idle streams.
func (h *Cache) tick(now int64) {
	h.rate.rotate(now)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.watches {
		if now-w.wanted.Load() > int64(h.idle) {
			h.stopLocked(w)
		}
	}
}

// close ends every stream and frees the cache.
func (h *Cache) Close() {
	h.mu.Lock() // watch starts streams under it, after checking h.ctx
	h.cancel()
	h.mu.Unlock()
	h.wg.Wait()
	h.cache.InvalidateAll()
	h.cache.StopAllGoroutines()
}

// Stats is a snapshot of the hot cache's counters.
type Stats struct {
	Hits, Fills, Invalidations, Resets uint64
	Entries, Bytes, MaxBytes           uint64
	Streams                            uint64 // live invalidation streams
}

func (h *Cache) Stats() Stats {
	s := Stats{
		Hits: h.hits.Load(), Fills: h.fills.Load(), Invalidations: h.invals.Load(), Resets: h.resets.Load(),
		Entries: uint64(h.cache.EstimatedSize()), Bytes: h.cache.WeightedSize(), MaxBytes: h.cache.GetMaximum(),
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, w := range h.watches {
		if w.live.Load() {
			s.Streams++
		}
	}
	return s
}
