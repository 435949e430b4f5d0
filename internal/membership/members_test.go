package membership

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func TestMembership_DepartedMembersAreForgottenAfterLinger(t *testing.T) {
	const linger = time.Second
	mk := func(name string, join ...string) *Membership {
		m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", Join: join, Linger: linger,
			RetryInterval: 20 * time.Millisecond, Tune: fast, Logger: testLogger(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m
	}
	a := mk("a")
	b, c := mk("b", a.LocalAddr()), mk("c", a.LocalAddr())
	for _, m := range []*Membership{a, b, c} {
		waitFor(t, "three members", func() bool { return len(m.Alive()) == 3 })
	}

	c.Shutdown() // a crash
	waitFor(t, "c to be dead", func() bool { return stateOf(a, "c") == StateDead })
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	b.Shutdown()
	waitFor(t, "b to be left", func() bool { return stateOf(a, "b") == StateLeft })
	// ...then forgotten, leaving mark and all.
	waitFor(t, "departed members to be pruned", func() bool { return a.Counts() == Counts{Alive: 1} })
	if got := names(a.Members()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("members %v after linger", got)
	}
	a.mu.Lock()
	nodes, queued := len(a.nodes), len(a.departures)
	a.mu.Unlock()
	if nodes != 1 || queued != 0 {
		t.Fatalf("after pruning a keeps %d records and %d queued departures", nodes, queued)
	}
}

// bare is a Membership without memberlist, for the bookkeeping alone.
func bare(linger time.Duration) *Membership {
	return &Membership{cfg: Config{Name: "self", Linger: linger}, nodes: map[string]record{},
		changed: make(chan struct{}, 1), joined: make(chan struct{}),
		tables: &memberlist.TransmitLimitedQueue{NumNodes: func() int { return 1 }, RetransmitMult: 1}}
}

func node(name string, leaving bool) *memberlist.Node {
	md, _ := json.Marshal(meta{GRPC: "grpc-" + name, Leaving: leaving, TV: 1})
	return &memberlist.Node{Name: name, Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: md}
}

func TestMembership_PruneKeepsMembersThatCameBack(t *testing.T) {
	m := bare(time.Minute)
	ev := events{m}
	ev.NotifyJoin(node("self", false))
	ev.NotifyJoin(node("back", false))
	ev.NotifyLeave(node("back", false)) // dead...
	ev.NotifyJoin(node("back", false))  // ...and back
	ev.NotifyJoin(node("gone", false))
	ev.NotifyUpdate(node("gone", true)) // announced its leave...
	ev.NotifyLeave(node("gone", false)) // ...and left
	if c := m.Counts(); c != (Counts{Alive: 2, Left: 1}) {
		t.Fatalf("counts %+v before linger", c)
	}
	m.mu.Lock()
	m.pruneLocked(time.Now().Add(2 * time.Minute))
	m.mu.Unlock()
	if got := names(m.Members()); !slices.Equal(got, []string{"back", "self"}) {
		t.Fatalf("members %v after linger, want the one that came back and self", got)
	}
	checkCounts(t, m)
	// A member forgotten and seen again is listed afresh, without its old
	// leaving mark.
	ev.NotifyLeave(node("gone", false))
	if st := stateOf(m, "gone"); st != StateDead {
		t.Fatalf("gone is %v, want dead (its leaving mark went with its record)", st)
	}
	checkCounts(t, m)
}

func TestMembership_PruneNeverForgetsSelf(t *testing.T) {
	m := bare(time.Millisecond)
	ev := events{m}
	ev.NotifyJoin(node("self", false))
	ev.NotifyUpdate(node("self", true)) // this node is draining
	m.mu.Lock()
	m.pruneLocked(time.Now().Add(time.Hour))
	m.mu.Unlock()
	if st := stateOf(m, "self"); st != StateLeft {
		t.Fatalf("self is %v", st)
	}
}

func TestMembership_CountsDoesNotAllocate(t *testing.T) {
	m := bare(time.Hour)
	ev := events{m}
	for i := range 1000 {
		ev.NotifyJoin(node(fmt.Sprintf("n%d", i), false))
	}
	for i := range 100 {
		ev.NotifyLeave(node(fmt.Sprintf("n%d", i), false))
	}
	if allocs := testing.AllocsPerRun(100, func() { m.Counts() }); allocs != 0 {
		t.Fatalf("Counts allocates %.0f times per call", allocs)
	}
	if c := m.Counts(); c != (Counts{Alive: 900, Dead: 100}) {
		t.Fatalf("counts %+v", c)
	}
}

// BenchmarkCounts is what a metrics scrape pays, against Members (a sorted
// copy) for comparison.
func BenchmarkCounts(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		m := bare(time.Hour)
		ev := events{m}
		for i := range n {
			ev.NotifyJoin(node(fmt.Sprintf("n%d", i), false))
		}
		b.Run(fmt.Sprintf("Counts/%d", n), func(b *testing.B) {
			for b.Loop() {
				m.Counts()
			}
		})
		b.Run(fmt.Sprintf("Members/%d", n), func(b *testing.B) {
			for b.Loop() {
				m.Members()
			}
		})
	}
}

// checkCounts compares the counts kept as events arrive with a recount.
func checkCounts(t *testing.T, m *Membership) {
	t.Helper()
	var want Counts
	for _, x := range m.Members() {
		want.add(x.State, 1)
	}
	if got := m.Counts(); got != want {
		t.Fatalf("counts %+v, recount %+v", got, want)
	}
}

// Generation moves with every change Members would show (a join, new
// metadata, a departure, a member forgotten), and reading does not move it.
func TestMembership_GenerationMovesWithEveryChange(t *testing.T) {
	m := bare(time.Minute)
	ev := events{m}
	last := m.Generation()
	step := func(what string, change func()) {
		t.Helper()
		change()
		if g := m.Generation(); g == last {
			t.Fatalf("generation still %d after %s", g, what)
		} else {
			last = g
		}
		m.Members()
		if g := m.Generation(); g != last {
			t.Fatalf("reading the members moved the generation from %d to %d", last, g)
		}
	}
	step("a join", func() { ev.NotifyJoin(node("a", false)) })
	step("new metadata", func() { ev.NotifyUpdate(node("a", true)) })
	step("a departure", func() { ev.NotifyLeave(node("a", false)) })
	step("the linger's end", func() {
		m.mu.Lock()
		m.pruneLocked(time.Now().Add(2 * time.Minute))
		m.mu.Unlock()
	})
}
