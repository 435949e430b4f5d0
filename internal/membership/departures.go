package membership

import (
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
)

// maxDeparted bounds the names Departures remembers.
const maxDeparted = 4096

// unsureWindow is how soon after a table dropped a member that gossip
// still listed alive its leaving mark must come for the departure to count
// as graceful: the mark trails the coordinator's table by milliseconds
// (the leaving node pushes it to every peer, within its announce timeout).
// A leave much later says nothing of what the member did meanwhile.
const unsureWindow = 5 * time.Second

// Gossip is what Departures asks of the membership (a *Membership).
type Gossip interface {
	// State is what gossip says of a member now (0 when it knows none).
	State(name string) State
	// Exits returns when gossip last saw the member leave gracefully (its
	// leaving mark) and last saw it dead; zero for never. They are kept
	// across the member's return.
	Exits(name string) (left, dead time.Time)
}

// Departures remembers the members that dropped out of a node's ring
// without a graceful leave (they died, or were cut off), so that their
// return is recognized: the node must then merge (engine.Merge), since
// they may have written any key meanwhile. Members that leave gracefully
// are forgotten, so a rolling restart is no merge. The zero value is
// ready; it is not safe for concurrent use (a node calls it from its
// table installs, which take turns).
type Departures struct {
	departed map[string]departed
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// departed is how a member dropped out of the ring.
type departed struct {
	// unsure: gossip still listed it alive when a table without it came
	// (the coordinator saw its leave, or its death, first). Its leave,
	// if gossip reports one soon after with no death between, makes the
	// departure graceful (gracefulAfter).
	unsure bool
	at     time.Time
}

// Returning compares the ring old with r and returns the members of r
// that dropped out of an earlier ring without a graceful leave and are
// back; none when old is nil (the first ring). self is never counted.
func (d *Departures) Returning(self string, old, r *ring.Ring, g Gossip) []ring.Member {
	if old == nil {
		return nil
	}
	if d.departed == nil {
		d.departed = map[string]departed{}
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	for _, m := range old.Members() {
		if r.Has(m.Name) || m.Name == self {
			continue
		}
		st := g.State(m.Name)
		if st == StateLeft {
			delete(d.departed, m.Name)
			continue
		}
		if len(d.departed) >= maxDeparted {
			clear(d.departed) // forget the oldest lot; a merge missed is a cache kept warm, bounded by TTLs
		}
		d.departed[m.Name] = departed{unsure: st == StateAlive, at: now()}
	}
	var back []ring.Member
	for _, m := range r.Members() {
		dep, ok := d.departed[m.Name]
		if old.Has(m.Name) || !ok {
			continue
		}
		delete(d.departed, m.Name)
		if dep.unsure && gracefulAfter(g, m.Name, dep.at) {
			continue // it left gracefully after all; gossip said so after the table
		}
		back = append(back, m)
	}
	return back
}

// gracefulAfter reports whether gossip saw name leave gracefully within
// unsureWindow after at, and saw it die neither in between: a member that
// was paused or cut off, served writes, and left later, is returning.
func gracefulAfter(g Gossip, name string, at time.Time) bool {
	left, dead := g.Exits(name)
	if left.IsZero() || left.Before(at) || left.Sub(at) > unsureWindow {
		return false
	}
	return dead.Before(at) || dead.After(left)
}
