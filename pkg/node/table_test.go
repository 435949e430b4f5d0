package node_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// sameTables waits until every running node routes by one table and
// returns it.
func sameTables(t *testing.T, c *clustertest.Cluster) *ring.Ring {
	t.Helper()
	var r *ring.Ring
	clustertest.Eventually(t, 10*time.Second, func() error {
		up := c.Up()
		r = c.Node(up[0]).Ring()
		for _, i := range up[1:] {
			o := c.Node(i).Ring()
			if r == nil || o == nil || o.Version() != r.Version() || !slices.Equal(o.Owners(), r.Owners()) {
				return fmt.Errorf("node %d and node %d route by different tables", up[0], i)
			}
		}
		return nil
	})
	return r
}

// Issue 15: every node routes by the coordinator's table; a join moves
// about the ideal number of partitions (P / members), all to the new node;
// when the coordinator dies, the next oldest takes over from the newest
// table and no table goes back.
func TestCluster_OneTableMinimalMovesAndCoordinatorHandover(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	before := sameTables(t, c)
	i := c.AddNode()
	c.WaitConverged()
	after := sameTables(t, c)
	moved := ring.Diff(before, after)
	ideal := float64(after.PartitionCount()) / 4
	if got := float64(len(moved)); got > 1.1*ideal {
		t.Fatalf("a join moved %d partitions, more than 1.1 × the ideal %.0f", len(moved), ideal)
	}
	for _, m := range moved {
		if after.PartitionOwner(m.Partition).Name != clustertest.NodeName(i) {
			t.Fatalf("partition %d moved to %s, not to the joining node", m.Partition, after.PartitionOwner(m.Partition).Name)
		}
	}
	for _, m := range after.Members() {
		if n := after.Partitions(m.Name); n < after.PartitionCount()/4 || n > after.PartitionCount()/4+1 {
			t.Fatalf("%s owns %d partitions; shares must be exact", m.Name, n)
		}
	}
	// The coordinator is the oldest member: n1, started first.
	c.Kill(0)
	c.WaitConverged()
	handed := sameTables(t, c)
	if handed.Version()>>16 <= after.Version()>>16 || handed.Has("n1") {
		t.Fatalf("after the coordinator died: version %d (was %d), n1 still in: %v", handed.Version(), after.Version(), handed.Has("n1"))
	}
	if got, ideal := len(ring.Diff(after, handed)), float64(after.PartitionCount())/4; float64(got) > 1.1*ideal {
		t.Fatalf("a leave moved %d partitions, more than 1.1 × the ideal %.0f", got, ideal)
	}
}

// A node that a peer forwards to by a newer table than its own routes by
// that table before it serves the ops. Here the table moves a key's
// partition from n1, which holds a write-behind write of the key not yet
// flushed, to n2, which has not installed it (the coordinator's push to it
// is late): n2 must read the key from n1's pending write, as the
// partition's new owner, not from the database's older row.
func TestTable_ANodeForwardedToByANewerTableRoutesByItFirst(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour})
	t1 := sameTables(t, c)
	ns := clustertest.NSOrders
	key := keyOwnedBy(t, c, ns, 0)
	c.DB.Put(key, []byte("row"))
	ctx := ctxT(t)
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: []byte("pending")}); err != nil {
		t.Fatal(err)
	}
	owners := t1.Owners()
	to := slices.IndexFunc(t1.Members(), func(m ring.Member) bool { return m.Name == clustertest.NodeName(1) })
	owners[t1.PartitionOfKey(ns, key)] = uint32(to)
	t2, err := ring.FromOwners(ring.Config{PartitionCount: t1.PartitionCount()}, t1.Members(), owners, (t1.Version()>>16+1)<<16|1)
	if err != nil {
		t.Fatal(err)
	}
	c.Node(0).PinRing(t2) // n1 routes by t2; the others still by t1

	got, err := c.Cache(0).Get(ctx, &pb.GetRequest{Namespace: ns, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if v := c.Node(1).Ring().Version(); v != t2.Version() {
		t.Fatalf("n2 served the forwarded Get by table %x; want %x, the table it was forwarded by", v, t2.Version())
	}
	if string(got.Value) != "pending" {
		t.Fatalf("Get = %q; want the write pending on the previous owner, not the database's row", got.Value)
	}
}

// A node whose process was stopped past its peers' detection wakes up
// routing by its old table. What it cached is hidden before it serves
// again, and its write-behind misses ask the other members for pending
// writes: one of them may have taken its keys over and hold an
// acknowledged write the database has not seen. Here n1, by a table that
// gives it n3's key (its push to n3 lost in the stall), took a write of
// the key that waits in its journal.
func TestStall_AWokenNodeReadsAPeersPendingWriteOfItsKey(t *testing.T) {
	clk := testclock.New() // one clock for all: their hybrid clocks stay together
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour,
		Configure: func(_ int, cfg *node.Config) { cfg.Clock = clk }})
	ns := clustertest.NSOrders
	key := keyOwnedBy(t, c, ns, 2)
	c.DB.Put(key, []byte("row"))
	ctx := ctxT(t)
	get := func() string {
		t.Helper()
		r, err := c.Cache(2).Get(ctx, &pb.GetRequest{Namespace: ns, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Value)
	}
	if v := get(); v != "row" {
		t.Fatalf("Get through its owner n3 = %q, want the row", v)
	}
	t1 := c.Node(2).Ring()
	owners := t1.Owners()
	owners[t1.PartitionOfKey(ns, key)] = uint32(slices.IndexFunc(t1.Members(), func(m ring.Member) bool { return m.Name == clustertest.NodeName(0) }))
	taken, err := ring.FromOwners(ring.Config{PartitionCount: t1.PartitionCount()}, t1.Members(), owners, t1.Version())
	if err != nil {
		t.Fatal(err)
	}
	c.Node(0).PinRing(taken)
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: []byte("pending")}); err != nil {
		t.Fatal(err)
	}
	// Past the handoff windows of the tables that formed the cluster (n3
	// would ask its partitions' previous owners anyway) and the entry's
	// TTL: without a stall, n3 reloads the row.
	clk.Advance(2 * time.Minute)
	if v := get(); v != "row" {
		t.Fatalf("before the stall n3 serves %q; want the row (the test plays nothing otherwise)", v)
	}
	c.Node(2).Stalled(time.Hour)
	if v := get(); v != "pending" {
		t.Fatalf("Get through n3 after its stall = %q; want n1's pending write", v)
	}
}
