package service

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// WatchRing implements pb.CacheServer: the current ring, then each new
// one. The stream ends when the node starts to drain, so clients move to
// another node.
func (c *Cache) WatchRing(_ *pb.WatchRingRequest, stream pb.Cache_WatchRingServer) error {
	e := c.s.e
	var sent uint64
	for {
		changed := e.Changed() // before reading the ring: no change is missed
		if e.Draining() {
			return engine.StatusErr(engine.ErrNotReady)
		}
		if r := e.Ring(); r != nil && r.Version() != sent {
			if err := stream.Send(ringMessage(r)); err != nil {
				return err
			}
			sent = r.Version()
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-changed:
		}
	}
}

func ringMessage(r *ring.Ring) *pb.WatchRingResponse {
	members := r.Members()
	msg := &pb.WatchRingResponse{
		Version:          r.Version(),
		PartitionCount:   uint32(r.PartitionCount()),
		Owners:           r.Owners(), // indexes into Members()
		DefaultNamespace: r.Config().DefaultNamespace,
	}
	for _, m := range members {
		msg.Nodes = append(msg.Nodes, &pb.RingNode{Name: m.Name, GrpcAddr: m.Addr})
	}
	return msg
}

// Invalidation fan-out: every change of a key on this node (the
// namespaces' ChangeHook) goes to each WatchInvalidations subscriber's
// bounded buffer without blocking the writer. A subscriber whose buffer is
// full is marked lagging and its stream ends with RESOURCE_EXHAUSTED, so
// its client clears its cache instead of silently missing a key.
const (
	invalBuffer   = 8192 // keys buffered per subscriber
	invalMaxBatch = 256  // keys per message at most
)

// Hub fans out changed keys to subscribers. The zero value is ready.
type Hub struct {
	mu   sync.RWMutex
	subs map[*invalSub]struct{}
}

type invalSub struct {
	namespaces map[string]bool // nil: all
	ch         chan *pb.KeyRef
	lagOnce    sync.Once
	lagging    chan struct{} // closed when a key could not be buffered
	resetOnce  sync.Once
	reset      chan struct{} // closed by Hub.Reset: the subscriber must drop everything
}

func (h *Hub) subscribe(namespaces []string) *invalSub {
	s := &invalSub{ch: make(chan *pb.KeyRef, invalBuffer), lagging: make(chan struct{}), reset: make(chan struct{})}
	if len(namespaces) > 0 {
		s.namespaces = map[string]bool{}
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

func (h *Hub) unsubscribe(s *invalSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// Publish is the namespaces' ChangeHook; it never blocks.
func (h *Hub) Publish(ns, key string) {
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

var errLagging = status.Error(codes.ResourceExhausted, "invalidation subscriber fell behind: reset")

// WatchInvalidations implements pb.CacheServer: the keys that change on
// this node. It ends when the node drains, the client leaves, or the
// client falls behind.
func (c *Cache) WatchInvalidations(req *pb.WatchInvalidationsRequest, stream pb.Cache_WatchInvalidationsServer) error {
	e := c.s.e
	if err := c.s.authorizeWatch(CallerFrom(stream.Context()), req.Namespaces); err != nil {
		return engine.StatusErr(err)
	}
	for _, ns := range req.Namespaces {
		if _, err := e.Namespace(ns); err != nil {
			return engine.StatusErr(err)
		}
	}
	drain := e.Changed()
	if e.Draining() {
		return engine.StatusErr(engine.ErrNotReady)
	}
	sub := c.s.cfg.Hub.subscribe(req.Namespaces)
	defer c.s.cfg.Hub.unsubscribe(sub)
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
			drain = e.Changed() // woken by a ring change, or by draining
			if e.Draining() {
				return engine.StatusErr(engine.ErrNotReady)
			}
			continue
		case <-sub.lagging:
			return errLagging
		case <-sub.reset:
			return errReset
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
			return errLagging
		case <-sub.reset:
			return errReset
		default:
		}
		if err := stream.Send(&pb.WatchInvalidationsResponse{Keys: batch}); err != nil {
			return err
		}
	}
}

// authorizeWatch lets a peer (a node's hot cache) watch every namespace,
// and any other caller the namespaces it may read; no namespaces means all
// of them.
func (s *Services) authorizeWatch(c engine.Caller, namespaces []string) error {
	a := s.cfg.Auth
	if a == nil || a.Authorize(c.Principal, auth.RolePeer, "") == nil {
		return nil
	}
	if len(namespaces) == 0 {
		namespaces = s.e.Names()
	}
	for _, ns := range namespaces {
		if err := a.Authorize(c.Principal, auth.RoleRead, ns); err != nil {
			return err
		}
	}
	return nil
}
