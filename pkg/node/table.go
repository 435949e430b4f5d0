package node

import (
	"time"

	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/table"
	"github.com/ringcache/ringcache/pkg/ring"
)

// newTable returns the node's side of the partition table protocol
// (internal/table): one table for the whole cluster, computed by its
// oldest member.
func (n *Node) newTable() *table.Coordinator {
	return table.New(table.Config{
		Self: n.cfg.Name, Ring: n.cfg.Ring, HasSeeds: len(n.cfg.Join) > 0,
		Members: gossip{n}, Peers: n.peers, Routing: n.engine.Ring, Install: n.install,
		Clock: n.clock.Send, CurrentChanged: n.updateReady,
		Joined: n.joined.Load, Closing: n.closing.Load, Go: n.wg.Go, Logger: n.log,
	})
}

// reconcile is the ring loop's step after a membership change.
func (n *Node) reconcile() {
	n.table.Reconcile() // the RESP view follows by itself (respView: the membership's generation)
}

// install makes r, computed from prev, the table the node routes by
// instead of old: the members back from a crash are merged (and
// everything cached is dropped when the cluster routed without this node
// meanwhile, table.LeftOut), the engine routes by r, and the peer pool
// keeps r's members, dialling a returning one at once.
func (n *Node) install(old, prev, r *ring.Ring, leftOut bool) {
	// First: a member back at its address is dialled at once, before the
	// merge calls it and the engine replicates to it.
	n.peers.Redial(r.Members())
	back := n.returning(old, r)
	n.engine.Merge(back)
	if leftOut {
		n.engine.Rejoined(r)
	}
	n.engine.SetRingAfter(prev, r)
	n.engine.Announce(back)
	n.peers.Retain(r.Members())
	n.runWarm()    // a table that includes this node starts the warm
	n.setServing() // a node a wake found left out serves again
}

// confirmTable asks the peers, after a stall of this process, for the
// table they route by (engine.WatchStalls; the engine reports NOT_SERVING
// through notServing when they route without this node, until a table
// takes it back: install). The connections to the table's members that
// failed while the process was stopped are redialled first, so that the
// asks do not fail fast in gRPC's reconnect backoff.
func (n *Node) confirmTable() (peers *ring.Ring) {
	if r := n.engine.Ring(); r != nil {
		n.peers.Redial(r.Members())
	}
	return n.table.Confirm()
}

// gossip is the membership the table protocol reads, once it exists.
type gossip struct{ n *Node }

func (g gossip) Alive() []membership.Member { return g.n.members.Alive() }

func (g gossip) SetTableVersion(v uint64, timeout time.Duration) error {
	return g.n.members.SetTableVersion(v, timeout)
}
