package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/ringcache/ringcache/internal/fillguard"
	"github.com/ringcache/ringcache/internal/invalwatch"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// NearCacheOptions turns on the client's near cache: recent Get results kept
// in the client's memory and served without a call, invalidated by the
// keys' owners over WatchInvalidations streams.
type NearCacheOptions struct {
	// Namespaces whose keys are cached; empty means all.
	Namespaces []string
	// MaxBytes bounds the cached keys and values; default 64 MiB.
	MaxBytes int
	// TTL bounds how long an entry is served, the safety net should an
	// invalidation be lost without its stream breaking; default 2 s.
	TTL time.Duration
}

// nearCache is the near cache: an otter cache of Get results, kept
// consistent by one invalidation stream per ring node. It serves entries
// only while every node of the client's ring has a live stream, and drops
// them all (by bumping epoch) whenever a stream breaks, a stream starts
// (changes before it may have been missed) or the ring changes.
type nearCache struct {
	c          *Client
	all        bool
	namespaces map[string]bool
	cache      *otter.Cache[string, nearEntry]

	epoch atomic.Uint64 // entries of older epochs are dead
	// A fill is stored only if no invalidation of its key came after the
	// Get started.
	guard fillguard.Guard

	live    atomic.Bool   // every ring node has a live stream
	ringCh  chan struct{} // pokes the stream manager on a ring change
	hits    atomic.Uint64
	misses  atomic.Uint64
	resets  atomic.Uint64
	invals  atomic.Uint64
	streams sync.WaitGroup
}

type nearEntry struct {
	value []byte
	found bool
	epoch uint64
}

// nearToken is what a Get records before its call, to fill afterwards.
type nearToken struct {
	guard    fillguard.Token
	epoch    uint64
	wasAlive bool
}

func newNearCache(c *Client, o *NearCacheOptions) *nearCache {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.TTL <= 0 {
		o.TTL = 2 * time.Second
	}
	nc := &nearCache{c: c, all: len(o.Namespaces) == 0, namespaces: map[string]bool{}, ringCh: make(chan struct{}, 1)}
	for _, ns := range o.Namespaces {
		nc.namespaces[ns] = true
	}
	nc.cache = otter.Must(&otter.Options[string, nearEntry]{
		MaximumWeight: uint64(o.MaxBytes),
		Weigher: func(k string, e nearEntry) uint32 {
			return uint32(min(len(k)+len(e.value)+64, 1<<31))
		},
		ExpiryCalculator: otter.ExpiryWriting[string, nearEntry](o.TTL),
		Logger:           &otter.NoopLogger{},
	})
	return nc
}

func nearKey(ns, key string) string { return ns + "\x00" + key }

func (nc *nearCache) enabled(ns string) bool { return nc.all || nc.namespaces[ns] }

// get returns the cached result of key, if one may be served.
func (nc *nearCache) get(ns, key string) (nearEntry, bool) {
	if nc.live.Load() {
		if e, ok := nc.cache.GetIfPresent(nearKey(ns, key)); ok && e.epoch == nc.epoch.Load() {
			nc.hits.Add(1)
			return e, true
		}
	}
	nc.misses.Add(1)
	return nearEntry{}, false
}

// token is taken before a Get's call.
func (nc *nearCache) token(ns, key string) nearToken {
	// epoch before live: a reset in between makes the fill fail.
	t := nearToken{guard: nc.guard.Token(nearKey(ns, key)), epoch: nc.epoch.Load()}
	t.wasAlive = nc.live.Load()
	return t
}

// fill stores a Get result unless the key may have changed since the token.
func (nc *nearCache) fill(ns, key string, t nearToken, value []byte, found bool) {
	if !t.wasAlive {
		return
	}
	nc.guard.Fill(t.guard, func() {
		if nc.epoch.Load() == t.epoch {
			nc.cache.Set(nearKey(ns, key), nearEntry{value: value, found: found, epoch: t.epoch})
		}
	})
}

// invalidate drops key and makes fills of Gets already in flight fail.
func (nc *nearCache) invalidate(ns, key string) {
	k := nearKey(ns, key)
	nc.guard.Invalidate(k, func() { nc.cache.Invalidate(k) })
}

// reset drops every entry: invalidations may have been missed.
func (nc *nearCache) reset() {
	nc.resets.Add(1)
	nc.epoch.Add(1) // entries and fills of older epochs are dead at once
	nc.cache.InvalidateAll()
}

// ringChanged is called by followRing after installing a ring.
func (nc *nearCache) ringChanged() {
	select {
	case nc.ringCh <- struct{}{}:
	default:
	}
}

// run keeps one invalidation stream per ring node until the client closes.
func (nc *nearCache) run() {
	ctx := nc.c.ctx
	type watch struct {
		cancel context.CancelFunc
		live   atomic.Bool
	}
	watches := map[string]*watch{}
	var mu sync.Mutex // guards watches: streams recompute liveness from it
	recompute := func() {
		mu.Lock()
		defer mu.Unlock()
		r := nc.c.ring.Load()
		ok := r != nil && len(watches) > 0
		if r != nil {
			for _, a := range r.addrs {
				if w := watches[a]; w == nil || !w.live.Load() {
					ok = false
				}
			}
		}
		nc.live.Store(ok)
	}
	defer func() {
		nc.live.Store(false)
		mu.Lock()
		for _, w := range watches {
			w.cancel()
		}
		mu.Unlock()
		nc.streams.Wait()
		nc.cache.StopAllGoroutines()
	}()
	var nsList []string
	if !nc.all {
		for ns := range nc.namespaces {
			nsList = append(nsList, ns)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-nc.ringCh:
		}
		r := nc.c.ring.Load()
		if r == nil {
			continue
		}
		// The ring changed: a key may have a new owner this client did not
		// watch yet, so nothing cached may be trusted.
		nc.live.Store(false)
		nc.reset()
		mu.Lock()
		keep := map[string]bool{}
		for _, a := range r.addrs {
			keep[a] = true
			if watches[a] != nil {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			w := &watch{cancel: cancel}
			watches[a] = w
			nc.streams.Go(func() {
				nc.follow(wctx, a, nsList, func(up bool) {
					w.live.Store(up)
					recompute()
				})
			})
		}
		for a, w := range watches {
			if !keep[a] {
				w.cancel()
				delete(watches, a)
			}
		}
		mu.Unlock()
		recompute()
	}
}

// follow keeps the stream to addr open until ctx ends, reporting whether
// it is live; whenever it is not, the near cache is reset, since
// invalidations may have been missed.
func (nc *nearCache) follow(ctx context.Context, addr string, namespaces []string, setLive func(bool)) {
	invalwatch.Follow(ctx, func(ctx context.Context) (pb.Cache_WatchInvalidationsClient, error) {
		n, err := nc.c.node(addr)
		if err != nil {
			return nil, err
		}
		return n.cache.WatchInvalidations(ctx, &pb.WatchInvalidationsRequest{Namespaces: namespaces})
	}, nearWatch{nc: nc, addr: addr, setLive: setLive})
}

// nearWatch applies what one node's stream says to the near cache.
type nearWatch struct {
	nc      *nearCache
	addr    string
	setLive func(bool)
}

func (w nearWatch) Subscribed() {
	w.nc.reset() // changes before the subscription may have been missed
	w.setLive(true)
}

func (w nearWatch) Invalidate(keys []*pb.KeyRef) {
	for _, k := range keys {
		w.nc.invals.Add(1)
		w.nc.invalidate(k.Namespace, k.Key)
	}
}

func (w nearWatch) Lost(err error) {
	w.setLive(false)
	w.nc.reset()
	if err != nil {
		w.nc.c.log.Debug("invalidation stream ended; resubscribing", "node", w.addr, "err", err)
	}
}
