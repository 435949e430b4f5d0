package hotcache

import (
	"context"
	"sync/atomic"

	"github.com/ringcache/ringcache/internal/invalwatch"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// hotWatch is the hot cache's invalidation stream to one owner. Entries
// filled from the owner carry the watch's generation; the generation moves
// on whenever the stream breaks or stops, which kills them all at once.
type hotWatch struct {
	member ring.Member
	cancel context.CancelFunc
	live   atomic.Bool   // subscribed: every change on the owner reaches us
	gen    atomic.Uint64 // bumped on every subscription and every loss
	wanted atomic.Int64  // Cache.now of the last fill attempt
}

// watch returns the stream to owner, starting it if there is none; nil
// once the hot cache is closed.
func (h *Cache) watch(owner ring.Member) *hotWatch {
	now := h.now()
	h.mu.RLock()
	w := h.watches[owner.Name]
	h.mu.RUnlock()
	if w == nil || w.member.Addr != owner.Addr {
		h.mu.Lock()
		w = h.watches[owner.Name]
		if w != nil && w.member.Addr != owner.Addr {
			h.stopLocked(w) // the member restarted at another address
			w = nil
		}
		if w == nil {
			if h.ctx.Err() != nil {
				h.mu.Unlock()
				return nil
			}
			ctx, cancel := context.WithCancel(h.ctx)
			w = &hotWatch{member: owner, cancel: cancel}
			h.watches[owner.Name] = w
			h.wg.Go(func() { h.follow(ctx, w) })
		}
		h.mu.Unlock()
	}
	if w.wanted.Load() < now {
		w.wanted.Store(now)
	}
	return w
}

// stopLocked ends w and kills its entries; h.mu is held.
func (h *Cache) stopLocked(w *hotWatch) {
	if h.watches[w.member.Name] == w {
		delete(h.watches, w.member.Name)
	}
	w.cancel()
	h.lost(w)
}

// lost marks w's stream down: its entries are dead from here on.
func (h *Cache) lost(w *hotWatch) {
	wasLive := w.live.Swap(false)
	w.gen.Add(1)
	if wasLive {
		h.resets.Add(1)
		h.drop(w)
	}
}

// follow keeps w's stream open, resubscribing after a break, until ctx
// ends.
func (h *Cache) follow(ctx context.Context, w *hotWatch) {
	invalwatch.Follow(ctx, func(ctx context.Context) (pb.Cache_WatchInvalidationsClient, error) {
		return h.open(ctx, w.member)
	}, watchHandler{h, w})
}

// watchHandler applies what an owner's stream says to the cache.
type watchHandler struct {
	h *Cache
	w *hotWatch
}

// Subscribed: nothing filled before this point is served; fills need a
// token taken while live, and entries of an earlier subscription died
// with it.
func (x watchHandler) Subscribed() {
	x.w.gen.Add(1)
	x.w.live.Store(true)
}

func (x watchHandler) Invalidate(keys []*pb.KeyRef) {
	for _, k := range keys {
		x.h.invals.Add(1)
		x.h.Invalidate(ring.Key(k.Namespace, k.Key))
	}
}

func (x watchHandler) Lost(err error) {
	x.h.lost(x.w)
	if err != nil {
		x.h.log.Debug("hot cache: invalidation stream ended; resubscribing", "owner", x.w.member.Name, "err", err)
	}
}
