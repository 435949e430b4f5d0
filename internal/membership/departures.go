package membership

import "github.com/ringcache/ringcache/pkg/ring"

// maxDeparted bounds the names Departures remembers.
const maxDeparted = 4096

// Departures remembers the members that dropped out of a node's ring
// without a graceful leave (they died, or were cut off), so that their
// return is recognized: the node must then merge (engine.Merge), since
// they may have written any key meanwhile. Members that leave gracefully
// are forgotten, so a rolling restart is no merge. The zero value is
// ready; it is not safe for concurrent use (the ring loop owns it).
type Departures struct {
	departed map[string]bool
}

// Returning compares the ring old with r and returns the members of r
// that dropped out of an earlier ring without a graceful leave and are
// back; none when old is nil (the first ring). state is what gossip says
// of a member now; self is never counted.
func (d *Departures) Returning(self string, old, r *ring.Ring, state func(name string) State) []ring.Member {
	if old == nil {
		return nil
	}
	if d.departed == nil {
		d.departed = map[string]bool{}
	}
	for _, m := range old.Members() {
		if r.Has(m.Name) || m.Name == self {
			continue
		}
		if state(m.Name) == StateLeft {
			delete(d.departed, m.Name)
			continue
		}
		if len(d.departed) >= maxDeparted {
			clear(d.departed) // forget the oldest lot; a merge missed is a cache kept warm, bounded by TTLs
		}
		d.departed[m.Name] = true
	}
	var back []ring.Member
	for _, m := range r.Members() {
		if !old.Has(m.Name) && d.departed[m.Name] {
			back = append(back, m)
			delete(d.departed, m.Name)
		}
	}
	return back
}
