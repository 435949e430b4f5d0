package node_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ownerIndex returns the index of the node that owns key in ns per node 0's ring.
func ownerIndex(t *testing.T, c *clustertest.Cluster, ns, key string) int {
	t.Helper()
	owner := c.Node(c.Up()[0]).Ring().Owner(node.RoutingKey(ns, key)).Name
	for _, i := range c.Up() {
		if clustertest.NodeName(i) == owner {
			return i
		}
	}
	t.Fatalf("owner %s of %q is not a running node", owner, key)
	return -1
}

// keyOwnedBy finds a key in ns owned by node i.
func keyOwnedBy(t *testing.T, c *clustertest.Cluster, ns string, i int) string {
	t.Helper()
	for k := range 10000 {
		key := fmt.Sprintf("key-%d", k)
		if ownerIndex(t, c, ns, key) == i {
			return key
		}
	}
	t.Fatal("no key found for node")
	return ""
}

func stats(t *testing.T, c *clustertest.Cluster, i int) *pb.StatsResponse {
	t.Helper()
	s, err := c.Admin(i).Stats(ctxT(t), &pb.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func nsStats(s *pb.StatsResponse, ns string) *pb.NamespaceStats {
	for _, n := range s.Namespaces {
		if n.Name == ns {
			return n
		}
	}
	return nil
}

func TestCluster_Converges(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	for _, i := range c.Up() {
		m, err := c.Admin(i).Members(ctxT(t), &pb.MembersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Members) != 3 {
			t.Fatalf("node %d sees %d members", i, len(m.Members))
		}
		for _, mem := range m.Members {
			if mem.State != pb.MemberState_MEMBER_STATE_ALIVE || mem.GrpcAddr == "" {
				t.Fatalf("member %+v", mem)
			}
		}
	}
	// All rings agree partition by partition.
	r0 := c.Node(0).Ring()
	for _, i := range []int{1, 2} {
		if d := ring.Diff(r0, c.Node(i).Ring()); len(d) != 0 {
			t.Fatalf("node %d ring differs from node 0 in %d partitions", i, len(d))
		}
	}
}

func TestCluster_NonOwnerForwardsToOwner(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	ctx := ctxT(t)
	key := keyOwnedBy(t, c, clustertest.NSCache, 2)
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSCache, Key: key, Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	for _, i := range c.Up() {
		got, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSCache, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if !got.Found || string(got.Value) != "v1" {
			t.Fatalf("node %d: got %v %q", i, got.Found, got.Value)
		}
	}
	// The owner holds the entry; the others forwarded.
	if s := stats(t, c, 2); s.ForwardedIn < 2 || nsStats(s, clustertest.NSCache).Sets != 1 {
		t.Fatalf("owner stats: forwarded_in=%d sets=%d", s.ForwardedIn, nsStats(s, clustertest.NSCache).Sets)
	}
	if s := stats(t, c, 0); s.Forwards < 2 || nsStats(s, clustertest.NSCache).Sets != 0 {
		t.Fatalf("non-owner stats: forwards=%d sets=%d", s.Forwards, nsStats(s, clustertest.NSCache).Sets)
	}
	// Delete through a third node invalidates on the owner.
	if _, err := c.Cache(1).Delete(ctx, &pb.DeleteRequest{Namespace: clustertest.NSCache, Key: key}); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Cache(0).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSCache, Key: key}); got.GetFound() {
		t.Fatal("key still found after Delete")
	}
}

func TestCluster_ConcurrentColdGetsLoadOnce(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	c.DB.Put("42", []byte(`{"id":"42"}`))
	owner := ownerIndex(t, c, clustertest.NSUsers, "42")
	release := c.DB.Block()
	defer release()

	const callers = 300
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for k := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Cache(k%3).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSUsers, Key: "42"})
			if err == nil && string(got.Value) != `{"id":"42"}` {
				err = fmt.Errorf("got %q", got.Value)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	// Every caller, on every node, is waiting on the owner's single load.
	// (Counting the owner's Gets is not enough: a Get counted but not yet
	// attached to the load could miss it and start another after release.)
	clustertest.Eventually(t, 10*time.Second, func() error {
		s := stats(t, c, owner)
		if w := nsStats(s, clustertest.NSUsers).LoadsWaiting; w < callers {
			return fmt.Errorf("%d of %d callers wait on the owner's load", w, callers)
		}
		return nil
	})
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := c.DB.Loads(); n != 1 {
		t.Fatalf("backend saw %d loads for %d concurrent cold Gets, want 1", n, callers)
	}
	ns := nsStats(stats(t, c, owner), clustertest.NSUsers)
	t.Logf("owner: gets=%d loads=%d deduplicated=%d", ns.Gets, ns.Loads, ns.LoadsDeduplicated)
	if ns.Loads != 1 || ns.LoadsDeduplicated != callers-1 {
		t.Fatalf("owner loads=%d deduplicated=%d", ns.Loads, ns.LoadsDeduplicated)
	}
}

func TestCluster_DisagreeingRingsDoNotDeadlock(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	a, b := c.Node(0), c.Node(1)
	// Each node believes the other owns every key.
	ra, err := ring.New(ring.Config{}, []ring.Member{{Name: b.Name(), Addr: b.GRPCAddr()}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := ring.New(ring.Config{}, []ring.Member{{Name: a.Name(), Addr: a.GRPCAddr()}}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	a.PinRing(ra)
	b.PinRing(rb)
	c.DB.Put("k", []byte("v"))
	ctx := ctxT(t)
	for _, i := range []int{0, 1} {
		got, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSUsers, Key: "k"})
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if string(got.Value) != "v" {
			t.Fatalf("node %d: got %q", i, got.Value)
		}
		if _, err := c.Cache(i).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSCache, Key: "s", Value: []byte("x")}); err != nil {
			t.Fatalf("node %d set: %v", i, err)
		}
	}
	// Exactly one hop each: each forwarded once and served the other's call.
	for _, i := range []int{0, 1} {
		s := stats(t, c, i)
		if s.Forwards != 2 || s.ForwardedIn != 2 {
			t.Fatalf("node %d: forwards=%d forwarded_in=%d, want 2 and 2", i, s.Forwards, s.ForwardedIn)
		}
	}
}

func TestCluster_StoppedNodesKeysServedByOthers(t *testing.T) {
	for _, mode := range []string{"graceful", "crash"} {
		t.Run(mode, func(t *testing.T) {
			c := clustertest.Start(t, 3, clustertest.Options{})
			key := keyOwnedBy(t, c, clustertest.NSUsers, 2)
			c.DB.Put(key, []byte("row"))
			if mode == "graceful" {
				c.Stop(2)
			} else {
				c.Kill(2)
			}
			c.WaitConverged()
			ctx := ctxT(t)
			for _, i := range []int{0, 1} {
				got, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSUsers, Key: key})
				if err != nil || string(got.GetValue()) != "row" {
					t.Fatalf("node %d after %s stop: %v %q", i, mode, err, got.GetValue())
				}
			}
			if o := ownerIndex(t, c, clustertest.NSUsers, key); o == 2 {
				t.Fatal("stopped node still owns the key")
			}
		})
	}
}

func TestCluster_UnreachableOwnerIsUnavailableNotLocalLoad(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	key := keyOwnedBy(t, c, clustertest.NSUsers, 2)
	c.DB.Put(key, []byte("row"))
	// Node 0 still believes node 2 owns the key but cannot reach it.
	c.Node(0).PinRing(c.Node(0).Ring())
	c.Isolate(2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Cache(0).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSUsers, Key: key})
	if code := status.Code(err); code != codes.Unavailable {
		t.Fatalf("err = %v, want UNAVAILABLE", err)
	}
	if !strings.Contains(err.Error(), "n3") {
		t.Fatalf("error should name the owner: %v", err)
	}
	if n := c.DB.Loads(); n != 0 {
		t.Fatalf("backend saw %d loads; a non-owner must not load locally", n)
	}
}

func TestCluster_IsolatedNodeIsDroppedAndRejoinsAfterHeal(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	c.Isolate(2)
	c.WaitRing([]int{0, 1}, []string{"n1", "n2"})
	c.Net.Heal()
	c.WaitRing([]int{0, 1, 2}, []string{"n1", "n2", "n3"})
}

// An entry left behind on a node that lost a key must not be served again
// when the key moves back: the key may have been written elsewhere meanwhile.
func TestCluster_OwnershipRoundTripServesNoStaleEntry(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	ctx := ctxT(t)
	// The coordinator derives the next table from the current one: find a
	// key that n3 will take over.
	future, err := ring.Rebalance(c.Node(0).Ring(), []ring.Member{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for k := 0; key == ""; k++ {
		if cand := fmt.Sprintf("key-%d", k); future.Owner(node.RoutingKey(clustertest.NSCache, cand)).Name == "n3" {
			key = cand
		}
	}
	prev := ownerIndex(t, c, clustertest.NSCache, key)
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSCache, Key: key, Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	// n3 joins and takes the key over; the key is rewritten there.
	i := c.AddNode()
	c.WaitConverged()
	if o := ownerIndex(t, c, clustertest.NSCache, key); o != i {
		t.Fatalf("owner is node %d, want the new node %d", o, i)
	}
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSCache, Key: key, Value: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	// n3 leaves: the key returns to its previous owner.
	c.Stop(i)
	c.WaitConverged()
	if o := ownerIndex(t, c, clustertest.NSCache, key); o != prev {
		t.Fatalf("owner is node %d, want the previous owner %d", o, prev)
	}
	got, err := c.Cache(0).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSCache, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if got.Found && string(got.Value) == "v1" {
		t.Fatal("served v1, which was overwritten by v2 on another owner")
	}
}

// A graceful stop under load costs callers of the other nodes no errors.
func TestCluster_GracefulStopUnderLoadLosesNoCalls(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	for k := range 200 {
		c.DB.Put(fmt.Sprint(k), []byte("row"))
	}
	ctx := ctxT(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	for w := range 4 {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := c.Cache(w%2).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSUsers, Key: fmt.Sprint(k % 200)})
				calls.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if calls.Load() < 200 {
			return fmt.Errorf("%d calls so far", calls.Load())
		}
		return nil
	})
	c.Stop(2)
	c.WaitConverged()
	before := calls.Load()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if calls.Load() < before+200 {
			return fmt.Errorf("%d calls after the stop", calls.Load()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("%d calls, %d failed", calls.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed during a graceful stop; first: %v", failures.Load(), calls.Load(), firstErr.Load())
	}
}

func TestCluster_WriteBehindSetIsReadBackThroughEveryNodeAndFlushed(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true})
	ctx := ctxT(t)
	for k := range 50 {
		if _, err := c.Cache(k%3).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSOrders, Key: fmt.Sprint(k), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	for k := range 50 {
		got, err := c.Cache((k+1)%3).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSOrders, Key: fmt.Sprint(k)})
		if err != nil || !got.Found {
			t.Fatalf("key %d: %v %v", k, got, err)
		}
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		for k := range 50 {
			if _, ok := c.DB.Row(fmt.Sprint(k)); !ok {
				return fmt.Errorf("key %d not flushed yet", k)
			}
		}
		return nil
	})
}

// A node that takes a key over asks the previous owner for its pending
// write before it reads the database: the write is not shadowed by an older
// row while it waits to be flushed.
func TestCluster_NewOwnerSeesPreviousOwnersPendingWrite(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour})
	ctx := ctxT(t)
	future, err := ring.Rebalance(c.Node(0).Ring(), []ring.Member{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	for k := 0; key == ""; k++ {
		if cand := fmt.Sprintf("order-%d", k); future.Owner(node.RoutingKey(clustertest.NSOrders, cand)).Name == "n3" {
			key = cand
		}
	}
	c.DB.Put(key, []byte("old row"))
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSOrders, Key: key, Value: []byte("pending")}); err != nil {
		t.Fatal(err)
	}
	i := c.AddNode()
	c.WaitConverged()
	if o := ownerIndex(t, c, clustertest.NSOrders, key); o != i {
		t.Fatalf("owner %d, want the new node %d", o, i)
	}
	for _, via := range c.Up() {
		got, err := c.Cache(via).Get(ctx, &pb.GetRequest{Namespace: clustertest.NSOrders, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Value) != "pending" {
			t.Fatalf("via node %d: %q, want the previous owner's pending write", via, got.Value)
		}
	}
	if v, _ := c.DB.Row(key); string(v) != "old row" {
		t.Fatalf("the database was written (%q); the test needs the write still pending", v)
	}
}

// --max-batch-keys may differ between nodes, as it does during a rolling
// change of it: a node accepts a peer's forwarded batch whatever its own
// bound. Here n1 takes a GetMany of 600 keys and forwards n2's share (about
// 300) to n2, whose own bound is 100. Before, n2 refused the forward and
// every key of its share failed.
func TestCluster_NodesWithDifferentBatchBoundsServeEachOthersForwards(t *testing.T) {
	const keys, smallBound = 600, 100
	c := clustertest.Start(t, 2, clustertest.Options{Configure: func(i int, cfg *node.Config) {
		if i == 1 {
			cfg.MaxBatchKeys = smallBound
		}
	}})
	ctx := ctxT(t)
	names := make([]string, keys)
	owned := 0
	for k := range names {
		names[k] = fmt.Sprint("k", k)
		if ownerIndex(t, c, clustertest.NSCache, names[k]) == 1 {
			owned++
		}
	}
	if owned <= smallBound {
		t.Fatalf("n2 owns %d of the %d keys; the test needs more than %d", owned, keys, smallBound)
	}
	for _, k := range names {
		c.DB.Put(k, []byte("row-"+k))
	}
	resp, err := c.Cache(0).GetMany(ctx, &pb.GetManyRequest{Namespace: clustertest.NSUsers, Keys: names})
	if err != nil {
		t.Fatalf("GetMany of %d keys at n1, %d of them n2's: %v", keys, owned, err)
	}
	for i, r := range resp.Results {
		if r.ErrorCode != 0 || !r.Found || string(r.Value) != "row-"+names[i] {
			t.Fatalf("key %s: %v", names[i], r)
		}
	}
}
