package membership

import (
	"fmt"
	"testing"

	"github.com/ringcache/ringcache/pkg/ring"
)

func states(s map[string]State) func(string) State {
	return func(name string) State { return s[name] }
}

// ringOf returns a table of the named members.
func ringOf(t *testing.T, names ...string) *ring.Ring {
	t.Helper()
	ms := make([]ring.Member, len(names))
	for i, n := range names {
		ms[i] = ring.Member{Name: n, Addr: n + ":1"}
	}
	r, err := ring.New(ring.Config{PartitionCount: 256}, ms, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func memberNames(ms []ring.Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestDepartures_ADeadMemberBackIsReturningOnce(t *testing.T) {
	var d Departures
	r123, r12 := ringOf(t, "n1", "n2", "n3"), ringOf(t, "n1", "n2")
	alive := states(map[string]State{"n1": StateAlive, "n2": StateAlive, "n3": StateAlive})
	if back := d.Returning("n1", r123, r12, states(map[string]State{"n3": StateDead})); back != nil {
		t.Fatalf("a member dropping out is returned as back: %v", back)
	}
	if back := d.Returning("n1", r12, r123, alive); fmt.Sprint(memberNames(back)) != "[n3]" {
		t.Fatalf("Returning = %v, want [n3]: it dropped out without a graceful leave", memberNames(back))
	}
	if back := d.Returning("n1", r12, r123, alive); back != nil {
		t.Fatalf("Returning = %v the second time, want none", memberNames(back))
	}
	// Out and in again after a graceful leave: no merge.
	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateLeft}))
	if back := d.Returning("n1", r12, r123, alive); back != nil {
		t.Fatalf("Returning = %v after a graceful leave, want none", memberNames(back))
	}
}

func TestDepartures_ALaterGracefulLeaveForgetsTheDeparture(t *testing.T) {
	var d Departures
	r12, r1 := ringOf(t, "n1", "n2"), ringOf(t, "n1")
	d.Returning("n1", r12, r1, states(map[string]State{"n2": StateDead}))
	// n2 came back and left gracefully before this node's ring saw it.
	d.Returning("n1", r12, r1, states(map[string]State{"n2": StateLeft}))
	if back := d.Returning("n1", r1, r12, states(nil)); back != nil {
		t.Fatalf("Returning = %v, want none: the last departure was graceful", memberNames(back))
	}
}

func TestDepartures_SelfAndFirstRingAreNeverReturning(t *testing.T) {
	var d Departures
	if back := d.Returning("n1", nil, ringOf(t, "n1", "n2"), states(nil)); back != nil {
		t.Fatalf("first ring: Returning = %v", memberNames(back))
	}
	d.Returning("n1", ringOf(t, "n1", "n2"), ringOf(t, "n2"), states(map[string]State{"n1": StateDead}))
	if back := d.Returning("n1", ringOf(t, "n2"), ringOf(t, "n1", "n2"), states(nil)); back != nil {
		t.Fatalf("self counted as returning: %v", memberNames(back))
	}
}

func TestDepartures_Bounded(t *testing.T) {
	var d Departures
	many := []string{"self"}
	for i := range 255 {
		many = append(many, fmt.Sprintf("m%d", i))
	}
	for range maxDeparted/255 + 2 {
		d.Returning("self", ringOf(t, many...), ringOf(t, "self"), states(nil))
		for i := 1; i < len(many); i++ {
			many[i] += "x" // new names each round
		}
	}
	if len(d.departed) > maxDeparted {
		t.Fatalf("remembers %d departures, bound %d", len(d.departed), maxDeparted)
	}
}
