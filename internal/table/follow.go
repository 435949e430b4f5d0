package table

import (
	"sync"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
)

// Follow brings the node to the table of version v, by which the member
// from routes, when the node routes by an older one. from forwarded ops
// under it (Peer.Forward, Peer.ForwardStream), which may be of partitions
// the node gains by it: only once it routes by it does the node ask their
// previous owners for pending write-behind writes and cached entries
// rather than load them from the database, and keep what it caches of
// them. The coordinator pushes each table to every member at once, but
// under load one member can install it well after another forwards by it.
//
// Follow returns once the node routes by v or a newer table, the pull
// failed, or followTimeout passed (an install walks the cache, which a
// large one makes slow; it goes on in the background): the ops are served
// either way. A version is pulled for at most once — a table without this
// node is refused, and not asked for again — unless the member asked
// answered with an older table, and concurrent callers wait for one pull.
// A version no newer than the node's costs one atomic load.
func (c *Coordinator) Follow(from string, v uint64) {
	if !c.behind(v) {
		return
	}
	c.follow.Lock()
	if !c.behind(v) {
		c.follow.Unlock()
		return
	}
	if miss := c.followMissed.Load(); newer(v, c.followed) || (miss != nil && miss.version == v && miss.from != from) {
		m, ok := c.alive(from)
		if !ok {
			c.follow.Unlock()
			return
		}
		done := make(chan struct{})
		c.followed, c.following = v, done
		c.followMissed.Store(nil)
		c.cfg.Go(func() { c.followPull(m, v, done) })
	}
	done := c.following
	c.follow.Unlock()
	t := time.NewTimer(followTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// followPull pulls m's table for Follow(v) and installs it, closing done
// once the node routes by it, or the pull failed. A table older than v
// leaves v to be pulled from another member that forwards by it: m
// forwarded by a table it does not route by itself (a node a wake found
// left out routes its clients' ops by its peers' table, and answers with
// its own).
func (c *Coordinator) followPull(m ring.Member, v uint64, done chan struct{}) {
	t, ok := c.fetch(m, followTimeout)
	installed := ok && c.install(t)
	if ok && newer(v, t.r.Version()) {
		c.followMissed.Store(&followMiss{version: v, from: m.Name})
	}
	close(done) // before the gossip update, which may take a while
	if installed {
		c.cfg.Logger.Debug("partition table pulled from a peer that forwarded by it", "from", m.Name, "version", t.r.Version())
		c.publish(t.r)
	}
}

// alive returns the member named name with its address, if gossip knows
// it alive.
func (c *Coordinator) alive(name string) (ring.Member, bool) {
	for _, m := range c.cfg.Members.Alive() {
		if m.Name == name && m.GRPCAddr != "" {
			return member(m), true
		}
	}
	return ring.Member{}, false
}

// behind reports whether v is newer than the table the node routes by.
func (c *Coordinator) behind(v uint64) bool {
	if v == 0 {
		return false
	}
	cur := c.cfg.Routing()
	return cur == nil || newer(v, cur.Version())
}

// Confirm asks the members this node knows alive for the tables they
// route by, after a stall of this process past failure detection
// (engine.WatchStalls): its peers may have declared it dead, routed by a
// table without it and written its keys elsewhere, and until a table that
// takes it back arrives, the node's own one would have it serve those keys
// as their owner. The newest table any peer answers within followTimeout
// is installed when it is newer than the node's and has it; Confirm
// returns it when it lacks the node, which is then out of its cluster's
// routing: it must own nothing, and send its clients' ops to their owners
// by that table. No answer, or none newer, leaves the node as it was (nil):
// it cannot learn more.
func (c *Coordinator) Confirm() *ring.Ring {
	var peers []ring.Member
	for _, m := range c.cfg.Members.Alive() {
		if m.Name != c.cfg.Self && m.GRPCAddr != "" {
			peers = append(peers, member(m))
		}
	}
	tables := make([]table, len(peers))
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Go(func() {
			if t, ok := c.fetch(m, followTimeout); ok {
				tables[i] = t
			}
		})
	}
	wg.Wait()
	var newest table
	for _, t := range tables {
		if t.r != nil && (newest.r == nil || newer(t.r.Version(), newest.r.Version())) {
			newest = t
		}
	}
	if newest.r == nil && len(peers) > 0 && !c.cfg.Closing() { // no peer answered
		c.cfg.Logger.Warn("after this process was stopped, no peer answered for its partition table; serving by this node's own, which its peers may have replaced", "peers", len(peers), "waited", followTimeout)
	}
	if newest.r == nil || !c.behind(newest.r.Version()) {
		return nil
	}
	if !newest.r.Has(c.cfg.Self) {
		c.cfg.Logger.Warn("the cluster routes by a table without this node, which it took out while this process was stopped; sending every op to its owner by that table, and not ready, until a table takes it back", "version", newest.r.Version(), "members", len(newest.r.Members()))
		return newest.r
	}
	// Ops wait for Confirm: the gossip update, which may take a gossip
	// round or more, goes on in the background, with whatever table the
	// node routes by then (a later install may have replaced this one).
	if c.install(newest) {
		c.cfg.Go(func() {
			if r := c.cfg.Routing(); r != nil {
				c.publish(r)
			}
		})
	}
	return nil
}
