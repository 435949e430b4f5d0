package membership

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
)

// gossipOf is a Gossip that lists members in the given states and saw
// none leave or die before.
type gossipOf map[string]State

func (g gossipOf) State(name string) State             { return g[name] }
func (g gossipOf) Exits(string) (left, dead time.Time) { return time.Time{}, time.Time{} }
func states(s map[string]State) Gossip                 { return gossipOf(s) }

// exited is a Gossip that lists its member alive now, and saw it leave
// gracefully at left and die at dead (zero: never).
type exited struct {
	name       string
	left, dead time.Time
}

func (g exited) State(string) State { return StateAlive }
func (g exited) Exits(name string) (left, dead time.Time) {
	if name != g.name {
		return time.Time{}, time.Time{}
	}
	return g.left, g.dead
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

// The coordinator may drop a leaving member from its table before this
// node's gossip has its leaving mark: the member is still alive here when
// the table comes. The mark that follows makes the departure graceful; a
// member that never leaves here (cut off from the coordinator only) is
// returning.
func TestDepartures_ALeaveHeardAfterTheTableIsGraceful(t *testing.T) {
	r123, r12 := ringOf(t, "n1", "n2", "n3"), ringOf(t, "n1", "n2")
	clock := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	d := Departures{Now: func() time.Time { return clock }}
	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateAlive}))
	if back := d.Returning("n1", r12, r123, exited{name: "n3", left: clock.Add(time.Millisecond)}); back != nil {
		t.Fatalf("Returning = %v, want none: n3's leave came after the table", memberNames(back))
	}

	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateAlive}))
	if back := d.Returning("n1", r12, r123, exited{name: "n3", left: clock.Add(-time.Minute)}); fmt.Sprint(memberNames(back)) != "[n3]" {
		t.Fatalf("Returning = %v, want [n3]: its only graceful leave was before it dropped out", memberNames(back))
	}
	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateAlive}))
	if back := d.Returning("n1", r12, r123, states(nil)); fmt.Sprint(memberNames(back)) != "[n3]" {
		t.Fatalf("Returning = %v, want [n3]: gossip never saw it leave", memberNames(back))
	}
	// Paused or cut off, then seen dead, then back and gone gracefully: it
	// may have served writes before its leave.
	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateAlive}))
	if back := d.Returning("n1", r12, r123, exited{name: "n3", dead: clock.Add(time.Second), left: clock.Add(2 * time.Second)}); fmt.Sprint(memberNames(back)) != "[n3]" {
		t.Fatalf("Returning = %v, want [n3]: it died between the table and its leave", memberNames(back))
	}
	// A leave long after the table says nothing of what it did meanwhile.
	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateAlive}))
	if back := d.Returning("n1", r12, r123, exited{name: "n3", left: clock.Add(time.Minute)}); fmt.Sprint(memberNames(back)) != "[n3]" {
		t.Fatalf("Returning = %v, want [n3]: its leave came a minute after the table", memberNames(back))
	}
}

// A member seen dead when it dropped out is returning, whatever gossip
// says of a later leave: it may have served writes while cut off.
func TestDepartures_ADeadMemberStaysReturningAfterALaterLeave(t *testing.T) {
	r123, r12 := ringOf(t, "n1", "n2", "n3"), ringOf(t, "n1", "n2")
	clock := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	d := Departures{Now: func() time.Time { return clock }}
	d.Returning("n1", r123, r12, states(map[string]State{"n3": StateDead}))
	if back := d.Returning("n1", r12, r123, exited{name: "n3", left: clock.Add(time.Second)}); fmt.Sprint(memberNames(back)) != "[n3]" {
		t.Fatalf("Returning = %v, want [n3]", memberNames(back))
	}
}
