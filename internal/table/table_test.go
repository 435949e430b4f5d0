package table

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// fakeNode is one member's side of the seams: its gossip view, its routing
// table, and the tables it pushed.
type fakeNode struct {
	mu      sync.Mutex
	alive   []membership.Member
	routing *ring.Ring
	pushed  map[string]*pb.Table
	version uint64 // published in gossip
	others  map[string]*Coordinator
	changes int           // CurrentChanged calls
	history []*ring.Ring  // every table installed, in order
	leftOut []bool        // Install's leftOut, for each
	gets    int           // GetTable calls
	hold    chan struct{} // when set, GetTable waits for it to close
}

func (f *fakeNode) Alive() []membership.Member { return f.alive }

func (f *fakeNode) SetTableVersion(v uint64, _ time.Duration) error {
	f.version = v
	return nil
}

func (f *fakeNode) GetTable(_ context.Context, to ring.Member, _ *pb.GetTableRequest) (*pb.GetTableResponse, error) {
	f.mu.Lock()
	f.gets++
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	c := f.others[to.Name]
	if c == nil {
		return nil, errors.New("unreachable")
	}
	return &pb.GetTableResponse{Table: c.Table()}, nil
}

func (f *fakeNode) PushTable(_ context.Context, to ring.Member, req *pb.PushTableRequest) (*pb.PushTableResponse, error) {
	f.mu.Lock()
	f.pushed[to.Name] = req.Table
	f.mu.Unlock()
	return &pb.PushTableResponse{}, nil
}

func newCoordinator(self string, f *fakeNode) *Coordinator {
	f.pushed, f.others = map[string]*pb.Table{}, map[string]*Coordinator{}
	return New(Config{
		Self: self, Ring: ring.Config{PartitionCount: ring.MinPartitionCount}, Members: f, Peers: f,
		Routing: func() *ring.Ring { f.mu.Lock(); defer f.mu.Unlock(); return f.routing },
		Install: func(_, _, r *ring.Ring, leftOut bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.routing, f.history, f.leftOut = r, append(f.history, r), append(f.leftOut, leftOut)
		},
		Clock: func() uint64 { return 1 }, CurrentChanged: func() { f.changes++ },
		Joined: func() bool { return true }, Closing: func() bool { return false },
		Go: func(fn func()) { fn() },
	})
}

func members(names ...string) []membership.Member {
	start := time.Unix(1000, 0)
	out := make([]membership.Member, len(names))
	for i, name := range names {
		// The first is the oldest: it coordinates.
		out[i] = membership.Member{Name: name, GRPCAddr: name + ":7101", Since: start.Add(time.Duration(i) * time.Second)}
	}
	return out
}

func TestCoordinator_TheOldestComputesAndEveryMemberRoutesByItsTable(t *testing.T) {
	f1, f2 := &fakeNode{alive: members("n1", "n2")}, &fakeNode{alive: members("n1", "n2")}
	c1, c2 := newCoordinator("n1", f1), newCoordinator("n2", f2)
	f2.others["n1"] = c1

	c2.Reconcile() // not the coordinator, and n1 publishes no table yet
	if f2.routing != nil || c2.Current() {
		t.Fatalf("n2 computed a table of its own (%v) or is current before its coordinator has one", f2.routing)
	}
	c1.Reconcile()
	if f1.routing == nil || len(f1.routing.Members()) != 2 || !c1.Current() || f1.version != f1.routing.Version() {
		t.Fatalf("the coordinator's table = %v, current %v, published %d", f1.routing, c1.Current(), f1.version)
	}
	pushed := f1.pushed["n2"]
	if pushed == nil || pushed.Version != f1.routing.Version() {
		t.Fatalf("pushed to n2: %v; want the table of version %d", pushed, f1.routing.Version())
	}
	// n2 receives the push; or, had it been lost, pulls it on its next
	// reconcile once gossip shows the coordinator's version.
	if v, err := c2.Receive(pushed); err != nil || v != pushed.Version || !c2.Current() {
		t.Fatalf("n2 Receive = %d, %v; current %v", v, err, c2.Current())
	}
	f3 := &fakeNode{alive: members("n1", "n2")}
	f3.alive[0].TableVersion = f1.routing.Version()
	c3 := newCoordinator("n2", f3)
	f3.others["n1"] = c1
	c3.Reconcile()
	if f3.routing == nil || f3.routing.Version() != f1.routing.Version() || !c3.Current() {
		t.Fatalf("a member that missed the push pulled %v, current %v", f3.routing, c3.Current())
	}
	if c3.Table().GetVersion() != f1.routing.Version() {
		t.Fatalf("Table() = %v", c3.Table())
	}
}

func TestCoordinator_AJoinMovesFewPartitionsAndVersionsGrow(t *testing.T) {
	f := &fakeNode{alive: members("n1", "n2")}
	c := newCoordinator("n1", f)
	c.Reconcile()
	before := f.routing
	f.alive = members("n1", "n2", "n3")
	c.Reconcile()
	after := f.routing
	if !newer(after.Version(), before.Version()) {
		t.Fatalf("version %x after a join is not newer than %x", after.Version(), before.Version())
	}
	moved := len(ring.Diff(before, after))
	if ideal := after.PartitionCount() / 3; moved > ideal+ideal/10+1 {
		t.Fatalf("a join moved %d partitions; the ideal is %d", moved, ideal)
	}
	// The table it was computed from travels with it, for the handoffs.
	if p := f.pushed["n3"]; p == nil || p.PreviousVersion != before.Version() {
		t.Fatalf("push to the new member = %v; want the previous version %d with it", p, before.Version())
	}
}

func TestCoordinator_RefusesBadAndOlderTables(t *testing.T) {
	f := &fakeNode{alive: members("n1", "n2")}
	c := newCoordinator("n2", f)
	if _, err := c.Receive(nil); !errors.Is(err, ErrBad) {
		t.Fatalf("Receive(nil) = %v; want ErrBad", err)
	}
	if _, err := c.Receive(&pb.Table{Version: 3, Owners: []uint32{9}, Members: []*pb.RingNode{{Name: "n1"}}}); !errors.Is(err, ErrBad) {
		t.Fatalf("Receive of a table owned by a member it does not list = %v; want ErrBad", err)
	}
	fc := &fakeNode{alive: members("n1", "n2")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	old := coord.Table()
	fc.alive = members("n1", "n2", "n3")
	coord.Reconcile()
	current := coord.Table()
	if v, err := c.Receive(current); err != nil || v != current.Version {
		t.Fatalf("Receive(current) = %d, %v", v, err)
	}
	if v, err := c.Receive(old); err != nil || v != current.Version || f.routing.Version() != current.Version {
		t.Fatalf("Receive of an older table = %d, %v, routing %d; want it ignored at %d", v, err, f.routing.Version(), current.Version)
	}
}

func TestVersions_CountUpAndTagTheirAuthor(t *testing.T) {
	a, b := nextVersion(0, "n1"), nextVersion(0, "n2")
	if a == b || newer(a, b) || newer(b, a) {
		t.Fatalf("first versions of two authors: %x %x; want equal counters, different tags", a, b)
	}
	if next := nextVersion(a, "n2"); !newer(next, a) || !newer(next, b) {
		t.Fatalf("nextVersion(%x) = %x is not newer", a, next)
	}
}

// After a partition heals, the cut-off side's table (a ring of one, whose
// author counted two departures) may carry a higher version than the
// majority's. No member installs it: routing by a table without itself, a
// node would send every key away and take the live members it lacks for
// departed. The coordinator computes the merged table from it instead.
func TestCoordinator_NoMemberInstallsATableWithoutItselfAfterAHeal(t *testing.T) {
	// The majority, n2 (oldest, coordinating) and n3, routes by a table
	// one change old; n1, alone, by one two changes old.
	f1 := &fakeNode{alive: members("n1")}
	c1 := newCoordinator("n1", f1)
	f1.alive = members("n1", "n2", "n3")
	c1.Reconcile()
	f1.alive = members("n1")
	c1.Reconcile()
	lone := f1.routing
	if len(lone.Members()) != 1 {
		t.Fatalf("n1's table has %d members", len(lone.Members()))
	}
	f2, f3 := &fakeNode{alive: members("n2", "n3")}, &fakeNode{alive: members("n2", "n3")}
	c2, c3 := newCoordinator("n2", f2), newCoordinator("n3", f3)
	c2.Reconcile()
	f3.others["n2"] = c2
	if _, err := c3.Receive(f2.pushed["n3"]); err != nil {
		t.Fatal(err)
	}
	majority := f2.routing
	if !newer(lone.Version(), majority.Version()) {
		t.Fatalf("the lone table %x is not newer than the majority's %x: the test does not play the heal", lone.Version(), majority.Version())
	}

	// Heal, before n2 has computed the merged table: n3 hears of n1's
	// table (a push, or a pull from a coordinator that has not computed
	// yet) and keeps its own.
	if v, err := c3.Receive(c1.Table()); err != nil || v != majority.Version() || f3.routing.Version() != majority.Version() {
		t.Fatalf("n3 Receive of n1's lone table = %x, %v; want it refused, routing by %x", v, err, majority.Version())
	}
	// The coordinator computes from the newest table, without installing it.
	healed := append(members("n2", "n3"), membership.Member{Name: "n1", GRPCAddr: "n1:7101", Since: time.Unix(2000, 0), TableVersion: lone.Version()})
	f2.alive = healed
	f2.others["n1"] = c1
	c2.Reconcile()
	merged := f2.routing
	if len(merged.Members()) != 3 || !newer(merged.Version(), lone.Version()) {
		t.Fatalf("the merged table has %d members at %x; want 3, newer than %x", len(merged.Members()), merged.Version(), lone.Version())
	}
	for _, f := range []*fakeNode{f2, f3} {
		for _, r := range f.history {
			if len(r.Members()) < 2 {
				t.Fatalf("a majority member installed the table %x of %d members", r.Version(), len(r.Members()))
			}
		}
	}
	for _, name := range []string{"n1", "n3"} {
		if p := f2.pushed[name]; p == nil || p.Version != merged.Version() {
			t.Fatalf("push to %s = %v; want the merged table", name, p)
		}
	}
}

// A node joining a cluster whose coordinator has not counted it yet waits
// for the table with it: it routes by none meanwhile, and is not current.
func TestCoordinator_AJoinerDoesNotRouteByATableWithoutIt(t *testing.T) {
	fc := &fakeNode{alive: members("n1", "n2")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	f := &fakeNode{alive: members("n1", "n2", "n3")}
	f.alive[0].TableVersion = fc.routing.Version()
	c := newCoordinator("n3", f)
	f.others["n1"] = coord
	c.Reconcile()
	if f.routing != nil || c.Current() {
		t.Fatalf("the joiner routes by %v (current %v) before its coordinator counted it", f.routing, c.Current())
	}
	fc.alive = members("n1", "n2", "n3")
	coord.Reconcile()
	if v, err := c.Receive(fc.pushed["n3"]); err != nil || v != fc.routing.Version() || !c.Current() {
		t.Fatalf("the joiner's Receive of the table with it = %x, %v; current %v", v, err, c.Current())
	}
}

// A member that routes by an older table than a peer that forwards to it
// pulls the peer's before the forwarded ops are served: once per version,
// shared by concurrent forwards, and never for a version no newer than
// its own.
func TestFollow_PullsTheForwardersNewerTableOncePerVersion(t *testing.T) {
	fc := &fakeNode{alive: members("n1", "n2")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	f := &fakeNode{alive: members("n1", "n2")}
	c := newCoordinator("n2", f)
	f.others["n1"] = coord
	if _, err := c.Receive(fc.pushed["n2"]); err != nil {
		t.Fatal(err)
	}
	t1 := fc.routing.Version()
	fc.alive = members("n1", "n2", "n3")
	coord.Reconcile() // its push to n2 is lost
	t2 := fc.routing.Version()

	c.Follow("n1", 0)  // a sender that sends no version
	c.Follow("n1", t1) // one no newer than n2's
	if f.gets != 0 {
		t.Fatalf("%d pulls for versions no newer than the node's", f.gets)
	}
	c.Follow("nX", t2) // a sender gossip does not know
	if f.gets != 0 || f.routing.Version() != t1 {
		t.Fatalf("%d pulls from a sender not in gossip; routing by %x", f.gets, f.routing.Version())
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { c.Follow("n1", t2) })
	}
	wg.Wait()
	if f.gets != 1 || f.routing.Version() != t2 {
		t.Fatalf("8 concurrent forwards under %x: %d pulls, routing by %x; want 1 pull and that table", t2, f.gets, f.routing.Version())
	}
	if f.version != t2 {
		t.Fatalf("gossip says %x; want the followed table %x", f.version, t2)
	}
	c.Follow("n1", t2)
	if f.gets != 1 {
		t.Fatalf("%d pulls once the node routes by the version", f.gets)
	}

	// A table without this node is refused, and not asked for again.
	f4 := &fakeNode{alive: members("n1", "n2", "n3", "n4")}
	c4 := newCoordinator("n4", f4)
	f4.others["n1"] = coord
	c4.Follow("n1", t2)
	c4.Follow("n1", t2)
	if f4.gets != 1 || f4.routing != nil {
		t.Fatalf("a node the table lacks: %d pulls, routing by %v; want 1 pull, no table", f4.gets, f4.routing)
	}
}

// A member can forward by a table it does not route by itself: a node a
// wake found left out routes its clients' ops by its peers' table and
// answers a pull with its own, older one. The version is then pulled from
// the next member that forwards by it, not taken as pulled for good.
func TestFollow_AForwarderThatAnswersWithAnOlderTableIsNotTheLastAsked(t *testing.T) {
	fc := &fakeNode{alive: members("n1", "n2")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	t1 := fc.routing.Version()
	stale := newCoordinator("n2", &fakeNode{alive: members("n1", "n2")}) // routes by t1
	f := &fakeNode{alive: members("n1", "n2", "n3")}
	c := newCoordinator("n2", f)
	for _, co := range []*Coordinator{stale, c} {
		if _, err := co.Receive(fc.pushed["n2"]); err != nil {
			t.Fatal(err)
		}
	}
	fc.alive = members("n1", "n2", "n3")
	coord.Reconcile() // its push to n2 is lost
	t2 := fc.routing.Version()
	f.others["n1"], f.others["n3"] = coord, stale

	c.Follow("n3", t2) // n3 forwarded by t2, and answers with t1
	c.Follow("n3", t2)
	if f.gets != 1 || f.routing.Version() != t1 {
		t.Fatalf("forwards by %x from n3, which routes by %x: %d pulls, routing by %x; want 1 pull, no change", t2, t1, f.gets, f.routing.Version())
	}
	c.Follow("n1", t2)
	if f.gets != 2 || f.routing.Version() != t2 {
		t.Fatalf("then a forward by %x from n1: %d pulls in all, routing by %x; want 2 and that table", t2, f.gets, f.routing.Version())
	}
}

// A pull that takes long (a slow peer, or an install that walks a large
// cache) holds the forwarded ops up for at most followTimeout; the table
// is installed when it comes.
func TestFollow_WaitsForASlowPullOnlySoLong(t *testing.T) {
	fc := &fakeNode{alive: members("n1", "n2")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	f := &fakeNode{alive: members("n1", "n2"), hold: make(chan struct{})}
	c := newCoordinator("n2", f)
	c.cfg.Go = func(fn func()) { go fn() }
	f.others["n1"] = coord
	if _, err := c.Receive(fc.pushed["n2"]); err != nil {
		t.Fatal(err)
	}
	fc.alive = members("n1", "n2", "n3")
	coord.Reconcile()
	t2 := fc.routing.Version()
	start := time.Now()
	c.Follow("n1", t2)
	if waited := time.Since(start); waited < followTimeout/2 || waited > 5*followTimeout {
		t.Fatalf("Follow returned after %s with its pull held; want about %s", waited, followTimeout)
	}
	close(f.hold)
	deadline := time.Now().Add(10 * time.Second)
	for c.cfg.Routing().Version() != t2 {
		if time.Now().After(deadline) {
			t.Fatalf("the held pull, released, did not install %x", t2)
		}
		time.Sleep(time.Millisecond)
	}
}

// A node learns that the cluster routed without it (it was paused or cut
// off past its failure detection, its own table unchanged) from the table
// it installs, also when it never saw the tables that dropped it and took
// it back: pushes missed under load, or a pull of a later table.
func TestLeftOut_ANodeThatSkippedTheTablesWithoutItLearnsItWasLeftOut(t *testing.T) {
	fc := &fakeNode{alive: members("n1", "n2", "n3")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	f2, f3 := &fakeNode{alive: members("n1", "n2", "n3")}, &fakeNode{alive: members("n1", "n2", "n3")}
	c2, c3 := newCoordinator("n2", f2), newCoordinator("n3", f3)
	for _, c := range []*Coordinator{c2, c3} {
		if _, err := c.Receive(coord.Table()); err != nil {
			t.Fatal(err)
		}
	}
	fc.alive = members("n1", "n2") // n3 cut off: a table without it
	coord.Reconcile()
	fc.alive = members("n1", "n2", "n3") // back: a table with it
	coord.Reconcile()
	fc.alive = members("n1", "n2", "n3", "n4") // a join: n3 and n2 get only this one
	coord.Reconcile()
	last := fc.pushed["n3"]
	if last.PreviousVersion == 0 || last.Version>>tagBits != 4 {
		t.Fatalf("the coordinator's fourth table is %x, computed from %x", last.Version, last.PreviousVersion)
	}
	for _, tc := range []struct {
		c    *Coordinator
		f    *fakeNode
		want bool
	}{{c3, f3, true}, {c2, f2, false}} {
		if _, err := tc.c.Receive(last); err != nil {
			t.Fatal(err)
		}
		if got := tc.f.leftOut[len(tc.f.leftOut)-1]; got != tc.want || tc.f.routing.Version() != last.Version {
			t.Fatalf("%s installed %x with leftOut %v, want %v", tc.c.cfg.Self, tc.f.routing.Version(), got, tc.want)
		}
	}
	// The coordinator's table as a member pulls it carries the same.
	if got := coord.Table().MemberSince; len(got) != 4 || !slices.Equal(got, last.MemberSince) {
		t.Fatalf("Table().MemberSince = %v, pushed %v", got, last.MemberSince)
	}
}

func TestLeftOut(t *testing.T) {
	of := func(v uint64, names ...string) *ring.Ring {
		ms := make([]ring.Member, len(names))
		for i, n := range names {
			ms[i] = ring.Member{Name: n, Addr: n + ":1"}
		}
		r, err := ring.New(ring.Config{PartitionCount: 256}, ms, v<<tagBits|1)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	abc1, bc2, abc3, ab3, abcd4 := of(1, "a", "b", "c"), of(2, "b", "c"), of(3, "a", "b", "c"), of(3, "a", "b"), of(4, "a", "b", "c", "d")
	back := map[string]uint64{"a": abc3.Version(), "b": abc1.Version(), "c": abc1.Version(), "d": abcd4.Version()}
	always := map[string]uint64{"a": abc1.Version(), "b": abc1.Version(), "c": abc1.Version(), "d": abcd4.Version()}
	for _, tc := range []struct {
		name         string
		old, prev, r *ring.Ring
		since        map[string]uint64
		want         bool
	}{
		{"paused past detection: the others routed without it", abc1, bc2, abc3, nil, true},
		{"back in a table it skipped: it entered after its own", abc1, abc3, abcd4, back, true},
		{"the same without since: its parent has it", abc1, abc3, abcd4, nil, false},
		{"in every table since its own", abc1, abc3, abcd4, always, false},
		{"since it routed by the table that took it back", abc3, abc3, abcd4, back, false},
		{"a first table: a new process has nothing cached", nil, bc2, abc3, nil, false},
		{"a table computed from its own", abc1, abc1, abc3, nil, false},
		{"no previous table known", abc1, nil, abc3, nil, false},
		{"another member joins", ab3, ab3, abcd4, map[string]uint64{"a": ab3.Version(), "d": abcd4.Version()}, false},
		{"it is leaving: the new table lacks it", abc1, abc1, bc2, nil, false},
		{"it routed by a table without itself", bc2, bc2, abc3, nil, false},
	} {
		if got := LeftOut("a", tc.old, tc.prev, tc.r, tc.since); got != tc.want {
			t.Errorf("%s: LeftOut = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// A node woken from a stall past failure detection asks the members it
// knows alive for their tables: it installs a newer one with it, reports
// one without it (the cluster took it out), and stays as it was when none
// is newer or no member answers.
func TestConfirm_AWokenNodeInstallsANewerTableOrLearnsItIsOut(t *testing.T) {
	fc := &fakeNode{alive: members("n1", "n2", "n3")}
	coord := newCoordinator("n1", fc)
	coord.Reconcile()
	f := &fakeNode{alive: members("n1", "n2", "n3")}
	c := newCoordinator("n3", f)
	f.others["n1"] = coord // n2 does not answer
	if _, err := c.Receive(fc.pushed["n3"]); err != nil {
		t.Fatal(err)
	}
	t1 := f.routing
	if c.Confirm() != nil || f.routing != t1 || f.gets != 2 {
		t.Fatalf("peers on the node's own table: %d pulls, routing by %x; want 2 pulls, no change, not out", f.gets, f.routing.Version())
	}

	fc.alive = members("n1", "n2", "n3", "n4") // a join while n3 was stopped
	coord.Reconcile()
	if c.Confirm() != nil || f.routing.Version() != fc.routing.Version() || f.version != fc.routing.Version() {
		t.Fatalf("a newer table with the node: routing by %x, gossip %x; want %x installed, not out", f.routing.Version(), f.version, fc.routing.Version())
	}

	fc.alive = members("n1", "n2", "n4") // the cluster declared n3 dead
	coord.Reconcile()
	t2 := f.routing
	if peers := c.Confirm(); peers == nil || peers.Version() != fc.routing.Version() || f.routing != t2 {
		t.Fatalf("a newer table without the node: got %v, routing by %x; want theirs, %x, and its own table kept", peers, f.routing.Version(), fc.routing.Version())
	}

	delete(f.others, "n1")
	if c.Confirm() != nil || f.routing != t2 {
		t.Fatal("no member answers: want the node as it was, not out")
	}
}
