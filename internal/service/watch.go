package service

import (
	"context"
	"time"

	"google.golang.org/grpc/peer"

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

// invalMaxBatch bounds the keys of one WatchInvalidations message.
const invalMaxBatch = 256

// Pacing: after a message that emptied its subscriber's backlog, a stream
// waits before it reads again, so that changes gather into fuller
// messages; a lone change after a quiet spell still goes out at once, and
// a backlog of more than a full message goes without waiting. The wait
// grows with the subscribers: 5 ms up to 100 of them, 50 µs each above
// (50 ms with 1,000), at most 100 ms; so up to 2,000 subscribers the node
// sends about 20,000 invalidation messages a second at most, in all. That
// keeps Sets fast beside many subscribers, at the price of later
// invalidations, and bounds the messages gRPC queues for a client that
// does not read.
const (
	minWatchPace    = 5 * time.Millisecond
	maxWatchPace    = 100 * time.Millisecond
	watchPacePerSub = 50 * time.Microsecond
)

func watchPace(subscribers int64) time.Duration {
	return min(maxWatchPace, max(minWatchPace, time.Duration(subscribers)*watchPacePerSub))
}

// WatchInvalidations implements pb.CacheServer: the keys that change on
// this node. It ends when the node drains, the client leaves, or the
// client falls behind (RESOURCE_EXHAUSTED); a subscription over the
// node's bound is refused with RESOURCE_EXHAUSTED and a retry delay.
func (c *Cache) WatchInvalidations(req *pb.WatchInvalidationsRequest, stream pb.Cache_WatchInvalidationsServer) error {
	e, hub := c.s.e, c.s.cfg.Hub
	ctx := stream.Context()
	if err := c.s.authorizeWatch(CallerFrom(ctx), req.Namespaces); err != nil {
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
	sub, err := hub.subscribe(req.Namespaces, c.s.fromPeer(ctx))
	if err != nil {
		return err
	}
	defer hub.unsubscribe(sub)
	// The empty first message says the subscription is live.
	if err := stream.SendMsg(invalidations(nil)); err != nil {
		return err
	}
	// await waits for ch or t (either may be nil); it returns the error
	// that ends the stream, if one came first.
	await := func(ch <-chan struct{}, t <-chan time.Time) error {
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-drain:
				drain = e.Changed() // woken by a ring change, or by draining
				if e.Draining() {
					return engine.StatusErr(engine.ErrNotReady)
				}
			case <-ch:
				return nil
			case <-t:
				return nil
			}
		}
	}
	pace := time.NewTimer(time.Hour)
	pace.Stop()
	defer pace.Stop()
	for {
		msg, wait, more, err := hub.read(sub, invalMaxBatch)
		if err != nil {
			return err
		}
		if wait != nil {
			if err := await(wait, nil); err != nil {
				return err
			}
			continue
		}
		if len(msg) == 0 {
			continue // a stretch of other namespaces' changes
		}
		if err := stream.SendMsg(msg); err != nil {
			return err
		}
		if !more {
			pace.Reset(watchPace(hub.subs.Load()))
			if err := await(nil, pace.C); err != nil {
				return err
			}
		}
	}
}

// fromPeer reports whether ctx's caller is a peer of this node: a
// principal with the peer role, or a connection from a member's host.
func (s *Services) fromPeer(ctx context.Context) bool {
	if a := s.cfg.Auth; a != nil && a.Enabled() && a.Authorize(CallerFrom(ctx).Principal, auth.RolePeer, "") == nil {
		return true
	}
	p, ok := peer.FromContext(ctx)
	return ok && s.cfg.Hub.IsPeer != nil && s.cfg.Hub.IsPeer(p.Addr)
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
