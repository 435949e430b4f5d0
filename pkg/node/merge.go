package node

import (
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/pkg/ring"
)

// maxDeparted bounds the names remembered as having dropped out of the
// ring without a graceful leave.
const maxDeparted = 4096

// returning compares the ring old with r and returns the members of r that
// drop out of an earlier ring of this node without a graceful leave
// (they died, or were cut off) and are back: the engine must then merge
// (engine.Merge). Members that leave gracefully are forgotten, so a
// rolling restart is no merge. Called by the ring loop only.
func (n *Node) returning(old, r *ring.Ring) []ring.Member {
	if old == nil {
		return nil
	}
	if n.departed == nil {
		n.departed = map[string]bool{}
	}
	states := map[string]membership.State{}
	for _, m := range n.members.Members() {
		states[m.Name] = m.State
	}
	for _, m := range old.Members() {
		if r.Has(m.Name) || m.Name == n.cfg.Name {
			continue
		}
		if states[m.Name] == membership.StateLeft {
			delete(n.departed, m.Name)
			continue
		}
		if len(n.departed) >= maxDeparted {
			clear(n.departed) // forget the oldest lot; a merge missed is a cache kept warm, bounded by TTLs
		}
		n.departed[m.Name] = true
	}
	var back []ring.Member
	for _, m := range r.Members() {
		if !old.Has(m.Name) && n.departed[m.Name] {
			back = append(back, m)
			delete(n.departed, m.Name)
		}
	}
	return back
}
