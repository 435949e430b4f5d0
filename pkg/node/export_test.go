package node

import (
	"time"

	"github.com/ringcache/ringcache/internal/resp"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// PinRing makes the node use r and ignore membership changes until
// UnpinRing: tests use it to make nodes disagree about ownership.
func (n *Node) PinRing(r *ring.Ring) { n.engine.Pin(r) }

// UnpinRing resumes following membership.
func (n *Node) UnpinRing() {
	n.engine.Unpin()
	n.reconcile()
}

// Stalled makes the node's stall watch see its process stopped for d.
func (n *Node) Stalled(d time.Duration) { n.engine.Stalled(d) }

// RESPView is the cluster as the node's Redis door shows it.
func (n *Node) RESPView() *resp.View { return n.respView() }

// RoutingKey exposes the key the ring hashes.
func RoutingKey(ns, key string) string { return ring.Key(ns, key) }

// HotCached reports whether the node would answer a Get of key in ns from
// its hot cache now; it does not count as a request.
func (n *Node) HotCached(ns, key string) bool {
	r := n.engine.Ring()
	if n.hot == nil || r == nil {
		return false
	}
	rk := ring.Key(ns, key)
	return n.hot.Cached(rk, r.Owner(rk))
}

// ServePipeline runs the Pipeline handler on stream, as gRPC would.
func (n *Node) ServePipeline(stream pb.Cache_PipelineServer) error {
	return n.services.Cache().Pipeline(stream)
}

// CacheServer returns the node's Cache service, to call its handlers
// directly.
func (n *Node) CacheServer() pb.CacheServer { return n.services.Cache() }

// AdminServer returns the node's Admin service, to call its handlers
// directly.
func (n *Node) AdminServer() pb.AdminServer { return n.admin }
