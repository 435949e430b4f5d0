package node

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Invalidation fan-out: every change of a key on this node (strategy's
// ChangeHook) goes to each WatchInvalidations subscriber's bounded buffer
// without blocking the writer. A subscriber whose buffer is full is marked
// lagging and its stream ends with RESOURCE_EXHAUSTED, so its client clears
// its near cache instead of silently missing a key.
const (
	invalBuffer   = 8192 // keys buffered per subscriber
	invalMaxBatch = 256  // keys per message at most
)

type invalidationHub struct {
	mu   sync.RWMutex
	subs map[*invalSub]struct{}
}

type invalSub struct {
	namespaces map[string]bool // nil: all
	ch         chan *pb.KeyRef
	lagOnce    sync.Once
	lagging    chan struct{} // closed when a key could not be buffered
}

func (h *invalidationHub) subscribe(namespaces []string) *invalSub {
	s := &invalSub{ch: make(chan *pb.KeyRef, invalBuffer), lagging: make(chan struct{})}
	if len(namespaces) > 0 {
		s.namespaces = make(map[string]bool, len(namespaces))
		for _, ns := range namespaces {
			s.namespaces[ns] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*invalSub]struct{}{}
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *invalidationHub) unsubscribe(s *invalSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// publish is the namespaces' ChangeHook; it never blocks.
func (h *invalidationHub) publish(ns, key string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var ref *pb.KeyRef // shared, read-only
	for s := range h.subs {
		if s.namespaces != nil && !s.namespaces[ns] {
			continue
		}
		if ref == nil {
			ref = &pb.KeyRef{Namespace: ns, Key: key}
		}
		select {
		case s.ch <- ref:
		default:
			s.lagOnce.Do(func() { close(s.lagging) })
		}
	}
}

// WatchInvalidations streams the keys that change on this node; see the
// proto. It ends when the node drains, the client leaves, or the client
// falls behind.
func (s *cacheServer) WatchInvalidations(req *pb.WatchInvalidationsRequest, stream pb.Cache_WatchInvalidationsServer) error {
	n := s.n
	for _, ns := range req.Namespaces {
		if _, err := n.namespace(ns); err != nil {
			return toStatus(err)
		}
	}
	drain := n.ringNotes.wait()
	if n.closing.Load() {
		return toStatus(ErrNotReady)
	}
	sub := n.invals.subscribe(req.Namespaces)
	defer n.invals.unsubscribe(sub)
	// The empty first message says the subscription is live.
	if err := stream.Send(&pb.WatchInvalidationsResponse{}); err != nil {
		return err
	}
	batch := make([]*pb.KeyRef, 0, invalMaxBatch)
	for {
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-drain:
			drain = n.ringNotes.wait() // woken by a ring change, or by draining
			if n.closing.Load() {
				return toStatus(ErrNotReady)
			}
			continue
		case <-sub.lagging:
			return status.Error(codes.ResourceExhausted, "invalidation subscriber fell behind: reset")
		case ref := <-sub.ch:
			batch = append(batch[:0], ref)
		}
		// Batch what is already queued: no waiting, so a lone change goes
		// out at once, while a busy node sends fuller messages.
	fill:
		for len(batch) < invalMaxBatch {
			select {
			case ref := <-sub.ch:
				batch = append(batch, ref)
			default:
				break fill
			}
		}
		select {
		case <-sub.lagging:
			return status.Error(codes.ResourceExhausted, "invalidation subscriber fell behind: reset")
		default:
		}
		if err := stream.Send(&pb.WatchInvalidationsResponse{Keys: batch}); err != nil {
			return err
		}
	}
}
