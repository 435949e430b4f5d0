package node

import (
	"context"
	"slices"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// RoutedAroundTimeout bounds how long a leaving node waits for its peers
// to route by a table without it before it stops serving.
const RoutedAroundTimeout = 3 * time.Second

// awaitRoutedAround waits, after the leave, until every other member of
// the last table this node routed by routes by a table without this node
// (Peer.GetTable), or RoutedAroundTimeout passes, or ctx ends. Until then
// a peer may still forward a call to this node: stopping the server
// earlier fails that call with OWNER_UNREACHABLE, a client-visible error
// of a graceful stop. A peer that cannot be asked counts as done, and so
// does one that is not staying (it announced its own leave, or is gone):
// when the whole cluster stops at once, no table without this node is
// ever made, and waiting for one would only delay the stop.
func (n *Node) awaitRoutedAround(ctx context.Context, members []ring.Member) {
	ctx, cancel := context.WithTimeout(ctx, RoutedAroundTimeout)
	defer cancel()
	waiting := slices.DeleteFunc(slices.Clone(members), func(m ring.Member) bool { return m.Name == n.cfg.Name })
	start := time.Now()
	for len(waiting) > 0 {
		staying := n.stayingPeers()
		waiting = slices.DeleteFunc(waiting, func(m ring.Member) bool { return !staying[m.Name] || !n.routesToSelf(ctx, m) })
		if len(waiting) == 0 {
			break
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			n.log.Warn("peers still route to this node; stopping anyway", "peers", len(waiting), "waited", time.Since(start).Round(time.Millisecond))
			return
		case <-t.C:
		}
	}
	n.log.Info("no peer routes to this node any more", "waited", time.Since(start).Round(time.Millisecond))
}

// routesToSelf reports whether m's table still names this node; false when
// m cannot be asked.
func (n *Node) routesToSelf(ctx context.Context, m ring.Member) bool {
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	resp, err := n.peers.GetTable(cctx, m, &pb.GetTableRequest{})
	if err != nil {
		return ctx.Err() == nil && cctx.Err() != nil // a slow answer: ask again; a refusal: done
	}
	return slices.ContainsFunc(resp.GetTable().GetMembers(), func(x *pb.RingNode) bool { return x.GetName() == n.cfg.Name })
}

// stayingPeers returns the names of the members other than this node that
// are alive and have not announced a leave.
func (n *Node) stayingPeers() map[string]bool {
	peers := map[string]bool{}
	for _, m := range n.members.Alive() {
		if m.Name != n.cfg.Name {
			peers[m.Name] = true
		}
	}
	return peers
}
