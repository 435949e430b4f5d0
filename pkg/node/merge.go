package node

import "github.com/ringcache/ringcache/pkg/ring"

// returning returns the members of r that dropped out of an earlier ring
// of this node without a graceful leave and are back, comparing with the
// ring old (membership.Departures): the engine must then merge
// (engine.Merge). Called under the table's install lock.
func (n *Node) returning(old, r *ring.Ring) []ring.Member {
	return n.departed.Returning(n.cfg.Name, old, r, n.members)
}

// kickFlusher flushes the write-behind journal now, after a merge: a
// pending write the returning members superseded answers reads here until
// it is flushed (engine.Superseded).
func (n *Node) kickFlusher() {
	if n.flusher != nil {
		n.flusher.Kick()
	}
}
