package engine

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/logtest"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// warmPeers connects engines in one process: Transfer and TransferLookup
// are served by the named engine; nothing else is used here.
type warmPeers struct {
	Peers
	mu      sync.Mutex
	engines map[string]*Engine
	pulls   map[string]int // Transfer calls by caller
}

func (w *warmPeers) pullsBy(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pulls[name]
}

func (w *warmPeers) get(name string) *Engine {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.engines[name]
}

type sliceStream struct {
	grpc.ClientStream
	msgs []*pb.TransferResponse
}

func (s *sliceStream) Recv() (*pb.TransferResponse, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}

func (w *warmPeers) Transfer(ctx context.Context, to ring.Member, req *pb.TransferRequest) (pb.Peer_TransferClient, error) {
	w.mu.Lock()
	if w.pulls == nil {
		w.pulls = map[string]int{}
	}
	w.pulls[req.From]++
	w.mu.Unlock()
	s := &sliceStream{}
	err := w.get(to.Name).ServeTransfer(ctx, req, func(m *pb.TransferResponse) error { s.msgs = append(s.msgs, m); return nil })
	return s, err
}

func (w *warmPeers) TransferLookup(_ context.Context, to ring.Member, req *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error) {
	return w.get(to.Name).TransferLookup(req)
}

func newWarmEngine(t *testing.T, name string, peers *warmPeers, loads *int) *Engine {
	t.Helper()
	var mu sync.Mutex
	loader := strategy.LoaderFunc(func(_ context.Context, key string) ([]byte, bool, error) {
		mu.Lock()
		*loads++
		mu.Unlock()
		return []byte("db-" + key), true, nil
	})
	return peers.add(t, name, NamespaceSpec{Policy: strategy.Policy{Name: "users", Read: strategy.ReadThrough, TTL: time.Hour, MaxKeyBytes: 64}, Loader: loader},
		WarmConfig{MessageBytes: 4096})
}

// add starts an engine named name with the one namespace spec, reachable
// by the others through w; it closes with the test.
func (w *warmPeers) add(t *testing.T, name string, spec NamespaceSpec, warm WarmConfig) *Engine {
	t.Helper()
	st, err := store.New(store.Config{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e, err := New(Config{Self: name, Store: st, Versions: &hlc.Clock{}, Peers: w, Namespaces: []NamespaceSpec{spec}, Warm: warm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	w.mu.Lock()
	w.engines[name] = e
	w.mu.Unlock()
	return e
}

// A join: the joiner pulls the entries of the partitions it gains from
// their previous owner, which no longer holds them in its store. A key
// the joiner wrote while both owned its partition takes neither copy: it
// is loaded again once the previous owner let go (the hand-off fence,
// fence.go); nothing else is loaded.
func TestWarm_JoinerPullsThePreviousOwnersEntries(t *testing.T) {
	peers := &warmPeers{engines: map[string]*Engine{}}
	var loadsA, loadsB int
	a := newWarmEngine(t, "a", peers, &loadsA)
	b := newWarmEngine(t, "b", peers, &loadsB)
	ms := members("a", "b")
	r1 := mustRing(t, ms[:1])
	r2 := rebalance(t, r1, ms)
	a.SetRing(r1)
	nsA, _ := a.Namespace("users")
	const keys = 400
	for i := range keys {
		mustGetValue(t, nsA, key(i), "db-"+key(i))
	}
	var moved []string
	for i := range keys {
		if r2.PartitionOwner(r2.PartitionOf(ring.Key("users", key(i)))).Name == "b" {
			moved = append(moved, key(i))
		}
	}
	if len(moved) < keys/4 {
		t.Fatalf("only %d of %d keys move", len(moved), keys)
	}
	// b sees the new table first: a has not let go yet, so b's pull waits.
	b.SetRingAfter(r1, r2)
	nsB, _ := b.Namespace("users")
	if err := nsB.Set(context.Background(), moved[0], []byte("written-on-b"), 0); err != nil {
		t.Fatal(err)
	}
	a.SetRing(r2)
	waitFor(t, "b to pull every moved key", func() bool { return b.WarmStats().EntriesIn >= uint64(len(moved)) })
	waitFor(t, "a's outbox to be released", func() bool { _, bytes := a.warm.out.size(); return bytes == 0 })
	pulled(t, b)
	for _, k := range moved {
		if _, ok := a.cfg.Store.Get(ring.Key("users", k)); ok {
			t.Fatalf("a still caches moved key %s", k)
		}
	}
	for _, k := range moved {
		mustGetValue(t, nsB, k, "db-"+k)
	}
	if loadsB != 1 {
		t.Fatalf("b loaded %d keys from the database, want 1 (the key it wrote while a still owned it)", loadsB)
	}
	if st := a.WarmStats(); st.EntriesOut < uint64(len(moved)) {
		t.Fatalf("a sent %d entries, want %d", st.EntriesOut, len(moved))
	}
}

func key(i int) string {
	return "k" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
}

func mustGetValue(t *testing.T, ns *strategy.Namespace, k, want string) {
	t.Helper()
	v, found, err := ns.Get(context.Background(), k)
	if err != nil || !found || string(v) != want {
		t.Fatalf("Get %s = %q %v %v, want %q", k, v, found, err, want)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A leaving node waits for its partitions' pulls only while some member
// could still pull them: alone, or with every other member gone too, its
// Close does not wait out the timeout.
func TestWarm_LeavingWaitsOnlyWhileSomeoneCanPull(t *testing.T) {
	peers := &warmPeers{engines: map[string]*Engine{}}
	var loads int
	a := newWarmEngine(t, "a", peers, &loads)
	a.SetRing(rebalance(t, mustRing(t, members("a")), members("a", "b")))
	a.StartLeaving()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if left := a.AwaitTransfers(ctx, func() bool { return false }); left == 0 {
		t.Fatal("no partition owed to b although nobody pulled")
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waited %s with nobody left to pull", waited)
	}
	pulling := 3
	left := a.AwaitTransfers(ctx, func() bool { pulling--; return pulling > 0 })
	if left == 0 || pulling != 0 {
		t.Fatalf("AwaitTransfers returned %d owed after %d checks; want it to wait while someone could pull", left, 3-pulling)
	}
}

// A graceful leave: the members that take the leaving node's partitions
// pull them, those it held entries of and those it held none of, and its
// wait for the pulls ends.
func TestWarm_ALeavingNodesPartitionsArePulledAndItsWaitEnds(t *testing.T) {
	peers := &warmPeers{engines: map[string]*Engine{}}
	var loadsA, loadsB int
	a := newWarmEngine(t, "a", peers, &loadsA)
	b := newWarmEngine(t, "b", peers, &loadsB)
	r2 := rebalance(t, mustRing(t, members("a")), members("a", "b"))
	a.SetRing(r2)
	b.SetRing(r2)
	nsA, _ := a.Namespace("users")
	var mine []string
	for i := 0; len(mine) < 5; i++ {
		if r2.PartitionOwner(r2.PartitionOf(ring.Key("users", key(i)))).Name == "a" {
			mine = append(mine, key(i))
			mustGetValue(t, nsA, key(i), "db-"+key(i))
		}
	}
	a.StartLeaving()
	r3 := rebalance(t, r2, members("b"))
	a.SetRingAfter(r2, r3)
	b.SetRingAfter(r2, r3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if left := a.AwaitTransfers(ctx, nil); left != 0 {
		t.Fatalf("%d of the leaving node's partitions were never pulled", left)
	}
	pulled(t, b) // a's side ends before b has adopted what it sent
	nsB, _ := b.Namespace("users")
	for _, k := range mine {
		mustGetValue(t, nsB, k, "db-"+k)
	}
	if loadsB != 0 {
		t.Fatalf("b loaded %d keys the leaving node had cached", loadsB)
	}
}

// holdingForB returns engine a, alone in r1, that cached keys 0 to n-1,
// then moved to r2, where b joined and gained partitions: a holds their
// entries for b.
func holdingForB(t *testing.T, n int) (a *Engine, nsA *strategy.Namespace, r1, r2 *ring.Ring) {
	t.Helper()
	var loads int
	a = newWarmEngine(t, "a", &warmPeers{engines: map[string]*Engine{}}, &loads)
	r1 = mustRing(t, members("a"))
	a.SetRing(r1)
	nsA, _ = a.Namespace("users")
	for i := range n {
		mustGetValue(t, nsA, key(i), "db-"+key(i))
	}
	r2 = rebalance(t, r1, members("a", "b"))
	a.SetRing(r2)
	return a, nsA, r1, r2
}

// A merge drops the entries held for new owners with the store's: after a
// member returns without a graceful leave (a healed partition, a pause past
// detection), neither may be served or handed over.
func TestWarm_AMergeEmptiesTheHeldEntries(t *testing.T) {
	a, _, _, _ := holdingForB(t, 200)
	if _, bytes := a.warm.out.size(); bytes == 0 {
		t.Fatal("a holds nothing for b after b joined")
	}
	a.Merge(members("b"))
	if _, bytes := a.warm.out.size(); bytes != 0 {
		t.Fatalf("a still holds %d bytes for new owners after a merge", bytes)
	}
}

// A node back in a table computed from one without it (paused or cut off
// past its failure detection, its own table unchanged) drops what it
// cached, and what it held for new owners, before it routes by that
// table: the others may have written any of its keys meanwhile. Back
// alone, it has no one to fear. A peer's Merged announcement for the same
// table, which may come after, drops nothing more.
func TestRejoined_DropsEveryEntryOnce(t *testing.T) {
	a, nsA, r1, r2 := holdingForB(t, 100)
	cached := func() (n int) {
		for i := range 100 {
			if _, ok := a.cfg.Store.Get(ring.Key("users", key(i))); ok {
				n++
			}
		}
		return n
	}
	if _, held := a.warm.out.size(); cached() == 0 || held == 0 {
		t.Fatalf("before: %d entries cached and %d bytes held; want some of each", cached(), held)
	}

	a.Rejoined(r1)
	if _, held := a.warm.out.size(); held == 0 || cached() == 0 {
		t.Fatal("Rejoined with no other member dropped entries")
	}

	a.Rejoined(r2)
	if n := cached(); n != 0 {
		t.Fatalf("a still caches %d entries after Rejoined", n)
	}
	if _, held := a.warm.out.size(); held != 0 {
		t.Fatalf("a still holds %d bytes for new owners after Rejoined", held)
	}
	for i := range 100 {
		if r2.PartitionOwner(r2.PartitionOf(ring.Key("users", key(i)))).Name == "a" {
			mustGetValue(t, nsA, key(i), "db-"+key(i))
		}
	}
	warm := cached()
	if warm == 0 {
		t.Fatal("a owns none of the keys in r2")
	}
	if err := a.MergedFrom("b"); err != nil {
		t.Fatal(err)
	}
	if n := cached(); n != warm {
		t.Fatalf("b's Merged for the table a rejoined at dropped %d entries loaded since", warm-n)
	}
}

// A lookup by a new owner (TransferLookup) of a key the previous owner
// still owns by its table hands over what a Get there would serve: not an
// entry a flush hid.
func TestTransferLookup_HandsOverNoFlushedEntry(t *testing.T) {
	var loads int
	a := newWarmEngine(t, "a", &warmPeers{engines: map[string]*Engine{}}, &loads)
	a.SetRing(mustRing(t, members("a")))
	nsA, _ := a.Namespace("users")
	mustGetValue(t, nsA, "k", "db-k")
	lookup := func() bool {
		resp, err := a.TransferLookup(&pb.TransferLookupRequest{Namespace: "users", Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Held
	}
	if !lookup() {
		t.Fatal("the owner hands over nothing of a key it caches")
	}
	if _, err := nsA.Flush(""); err != nil {
		t.Fatal(err)
	}
	if lookup() {
		t.Fatal("the owner hands over an entry the flush hid")
	}
}

// Dropping an empty cache is no warning (nodes started together find each
// other through tables that include and drop a member); dropping entries
// is: the cache is cold.
func TestMerge_WarnsOnlyWhenItDropsEntries(t *testing.T) {
	var loads int
	a := newWarmEngine(t, "a", &warmPeers{engines: map[string]*Engine{}}, &loads)
	w := logtest.NewWarnings(slog.NewTextHandler(io.Discard, nil))
	a.log = slog.New(w)
	a.SetRing(mustRing(t, members("a")))
	ns, _ := a.Namespace("users")
	mustGetValue(t, ns, key(1), "db-"+key(1))
	a.Merge(members("b"))
	if msgs := w.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "dropped every cached entry") {
		t.Fatalf("warnings %q after dropping a cached entry, want one", msgs)
	}
	a.Merge(members("c")) // nothing cached any more
	if msgs := w.Messages(); len(msgs) != 1 {
		t.Fatalf("warnings %q: dropping nothing warned again", msgs)
	}
}

// A pull ends once a later table takes its partitions away from the
// puller: asking on for the whole window (a minute), it would poll the
// previous owner every 20 ms, and be sent the entries the previous owner
// holds for the partitions' owner once it lets go.
func TestWarm_APullEndsWhenALaterTableTakesItsPartitionsAway(t *testing.T) {
	peers := &warmPeers{engines: map[string]*Engine{}}
	var loads int
	a := newWarmEngine(t, "a", peers, &loads)
	c := newWarmEngine(t, "c", peers, &loads)
	r0 := mustRing(t, members("a"))
	a.SetRing(r0)
	rAC := rebalance(t, r0, members("a", "c"))
	c.SetRingAfter(r0, rAC) // a routes by r0 and owns every partition: not yet
	if c.warm.pullers.Load() != 1 || !c.Settling() {
		t.Fatalf("c runs %d pullers after gaining partitions from a (settling %v), want 1", c.warm.pullers.Load(), c.Settling())
	}
	waitFor(t, "c to ask a", func() bool { return peers.pullsBy("c") > 0 })
	// A later table in which c owns nothing.
	rX, err := ring.FromOwners(ring.Config{}, members("a", "c"), make([]uint32, rAC.PartitionCount()), rAC.Version()+1)
	if err != nil {
		t.Fatal(err)
	}
	c.SetRingAfter(rAC, rX)
	waitFor(t, "c's puller to end", func() bool { return c.warm.pullers.Load() == 0 })
	if c.Settling() {
		t.Fatal("c settles partitions it does not own")
	}
}

// A previous owner hands the entries it holds for a partition only to the
// partition's owner in its own table: a member that pulls by another table
// (one it routes by late, or a pull a later table ended) gets none of
// them, and the owner still gets them all.
func TestTransfer_HeldEntriesGoOnlyToThePartitionsOwner(t *testing.T) {
	peers := &warmPeers{engines: map[string]*Engine{}}
	var loads int
	a := newWarmEngine(t, "a", peers, &loads)
	b := newWarmEngine(t, "b", peers, &loads)
	c := newWarmEngine(t, "c", peers, &loads)
	r0 := mustRing(t, members("a"))
	a.SetRing(r0)
	nsA, _ := a.Namespace("users")
	const keys = 400
	for i := range keys {
		mustGetValue(t, nsA, key(i), "db-"+key(i))
	}
	// Two tables computed from r0: one gives a's partitions to b, and the
	// other the same partitions to c.
	rAB := rebalance(t, r0, members("a", "b"))
	rAC, err := ring.FromOwners(ring.Config{}, members("a", "c"), rAB.Owners(), rAB.Version())
	if err != nil {
		t.Fatal(err)
	}
	toB := 0
	for i := range keys {
		if rAB.PartitionOwner(rAB.PartitionOf(ring.Key("users", key(i)))).Name == "b" {
			toB++
		}
	}
	c.SetRingAfter(r0, rAC) // c pulls from a, which owns everything yet
	waitFor(t, "c to ask a", func() bool { return peers.pullsBy("c") > 0 })
	a.SetRingAfter(r0, rAB) // a lets go of b's partitions and holds their entries
	// c asks until a has let go of every partition it pulls.
	waitFor(t, "c's pull to end", func() bool { return !c.Settling() })
	if in := c.WarmStats().EntriesIn; in != 0 {
		t.Fatalf("c, pulling by a table a does not route by, was sent %d entries held for b", in)
	}
	b.SetRingAfter(r0, rAB)
	pulled(t, b)
	if in := b.WarmStats().EntriesIn; in != uint64(toB) {
		t.Fatalf("b pulled %d entries, want the %d of the keys it gained", in, toB)
	}
}
