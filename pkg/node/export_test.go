package node

import (
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// PinRing makes the node use r and ignore membership changes until
// UnpinRing: tests use it to make nodes disagree about ownership.
func (n *Node) PinRing(r *ring.Ring) {
	n.frozen.Store(true)
	n.ring.Store(r)
}

// UnpinRing resumes following membership.
func (n *Node) UnpinRing() {
	n.frozen.Store(false)
	n.rebuildRing()
}

// RoutingKey exposes the key the ring hashes.
func RoutingKey(ns, key string) string { return routingKey(ns, key) }

// HotCached reports whether the node would answer a Get of key in ns from
// its hot cache now; it does not count as a request.
func (n *Node) HotCached(ns, key string) bool {
	if n.hot == nil {
		return false
	}
	owner, err := n.owner(ns, key)
	if err != nil {
		return false
	}
	_, ok := n.hot.lookup(routingKey(ns, key), owner)
	return ok
}

// ServePipeline runs the Pipeline handler on stream, as gRPC would.
func (n *Node) ServePipeline(stream pb.Cache_PipelineServer) error {
	return (&cacheServer{n: n}).Pipeline(stream)
}
