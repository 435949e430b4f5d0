package node

import (
	"context"
	"sync/atomic"
	"time"

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
	wanted atomic.Int64  // hotCache.now of the last fill attempt
}

// watch returns the stream to owner, starting it if there is none; nil
// once the hot cache is closed.
func (h *hotCache) watch(owner ring.Member) *hotWatch {
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
func (h *hotCache) stopLocked(w *hotWatch) {
	if h.watches[w.member.Name] == w {
		delete(h.watches, w.member.Name)
	}
	w.cancel()
	h.lost(w)
}

// lost marks w's stream down: its entries are dead from here on.
func (h *hotCache) lost(w *hotWatch) {
	wasLive := w.live.Swap(false)
	w.gen.Add(1)
	if wasLive {
		h.resets.Add(1)
		h.drop(w)
	}
}

// follow keeps w's stream open, resubscribing after a break, until ctx
// ends.
func (h *hotCache) follow(ctx context.Context, w *hotWatch) {
	const minBackoff, maxBackoff = 20 * time.Millisecond, time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		subscribed, err := h.stream(ctx, w)
		h.lost(w)
		if ctx.Err() != nil {
			return
		}
		h.log.Debug("hot cache: invalidation stream ended; resubscribing", "owner", w.member.Name, "err", err)
		if subscribed {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// stream subscribes to w's owner and drops the keys it reports until the
// stream breaks; subscribed tells whether it got as far as subscribing.
func (h *hotCache) stream(ctx context.Context, w *hotWatch) (subscribed bool, _ error) {
	s, err := h.open(ctx, w.member)
	if err != nil {
		return false, err
	}
	if _, err := s.Recv(); err != nil { // the empty "subscribed" message
		return false, err
	}
	// Nothing filled before this point is served: fills need a token taken
	// while live, and entries of an earlier subscription died with it.
	w.gen.Add(1)
	w.live.Store(true)
	for {
		msg, err := s.Recv()
		if err != nil {
			return true, err
		}
		for _, k := range msg.Keys {
			h.invals.Add(1)
			h.invalidate(routingKey(k.Namespace, k.Key))
		}
	}
}

// watchPeer is the node's invalSource: a stream of every namespace's
// changes over the pooled connection to the peer.
func (n *Node) watchPeer(ctx context.Context, to ring.Member) (pb.Cache_WatchInvalidationsClient, error) {
	cc, err := n.peers.conn(to.Addr)
	if err != nil {
		return nil, err
	}
	return pb.NewCacheClient(cc).WatchInvalidations(ctx, &pb.WatchInvalidationsRequest{})
}
