package node_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
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

// The converse: a sender still on an older table forwards an op to the
// key's owner there, which has moved on to a table that gives the key to
// another member. Served there, a write would be hidden from the reads the
// key's owner serves from its cache; the op goes on to that owner instead.
func TestTable_AForwardFromASenderBehindGoesOnToTheOwnerByTheNewerTable(t *testing.T) {
	ns := "wt"
	c, db := writeThroughCluster(t, ns)
	t1 := sameTables(t, c)
	key := keyOwnedBy(t, c, ns, 2)
	db.Put(key, []byte("row"))
	ctx := ctxT(t)
	get := getThrough(t, c, ns, key)
	if v := get(2); v != "row" { // cached on its owner n3
		t.Fatalf("Get through n3 = %q; want the row", v)
	}
	// n1 routes by an older table that gave the key to n2.
	owners := t1.Owners()
	owners[t1.PartitionOfKey(ns, key)] = uint32(slices.IndexFunc(t1.Members(), func(m ring.Member) bool { return m.Name == clustertest.NodeName(1) }))
	t0, err := ring.FromOwners(ring.Config{PartitionCount: t1.PartitionCount()}, t1.Members(), owners, (t1.Version()>>16-1)<<16|1)
	if err != nil {
		t.Fatal(err)
	}
	c.Node(0).PinRing(t0)
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if v := get(2); v != "new" {
		t.Fatalf("Get through the key's owner n3 after a Set through n1, behind = %q; want new", v)
	}
	if v := get(0); v != "new" {
		t.Fatalf("Get through n1, behind = %q; want new", v)
	}
	if v := c.Node(1).Ring().Version(); v != t1.Version() {
		t.Fatalf("n2 routes by %x; want %x (the test plays nothing otherwise)", v, t1.Version())
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

// A node whose process stopped past failure detection wakes up routing by
// the table it had, in which it owns keys its peers now route elsewhere. A
// write it took as their owner would be acknowledged and hidden from every
// read served by the member they route the key to. So it asks its peers
// for their table first, and while they route by one without it, it owns
// nothing: it sends its clients' ops to their owners by that table, and
// reports not ready (NotReady, health NOT_SERVING) until a table takes it
// back.
func TestStall_AWokenNodeTheClusterLeftOutSendsItsClientsOpsToTheirOwners(t *testing.T) {
	ns := "wt"
	c, _ := writeThroughCluster(t, ns)
	key := keyOwnedBy(t, c, ns, 2)
	ctx := ctxT(t)
	set := func(i int, v string) error {
		_, err := c.Cache(i).Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: []byte(v)})
		return err
	}
	get := getThrough(t, c, ns, key)
	if err := set(2, "before"); err != nil {
		t.Fatal(err)
	}
	// n1 and n2 route by a newer table without n3, as after declaring it
	// dead, and a write lands at the key's new owner.
	t1 := sameTables(t, c)
	without, err := ring.Rebalance(t1, t1.Members()[:2], t1.Version()+1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if without.Has(clustertest.NodeName(2)) || !t1.Has(clustertest.NodeName(2)) {
		t.Fatalf("the test needs n3 in %v and not in %v", t1.Members(), without.Members())
	}
	c.Node(0).PinRing(without)
	c.Node(1).PinRing(without)
	if err := set(0, "during"); err != nil {
		t.Fatal(err)
	}

	c.Node(2).Stalled(time.Hour)
	if err := set(2, "after"); err != nil {
		t.Fatalf("Set through n3 woken out of its cluster's table: %v", err)
	}
	if v := get(0); v != "after" {
		t.Fatalf("Get through n1 after a Set through the woken n3 = %q; want after (n3 took it as the key's owner by its old table)", v)
	}
	if err := c.Node(2).NotReady(); err == nil || !strings.Contains(err.Error(), "routes without it") {
		t.Fatalf("n3's NotReady = %v; want why", err)
	}
	h, err := healthpb.NewHealthClient(c.Conn(2)).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("n3's health = %v, %v; want NOT_SERVING", h, err)
	}
	// Its Redis door shows cluster clients the peers' table: every slot
	// owned by n1 or n2, so they are sent there (MOVED).
	v := c.Node(2).RESPView()
	if v == nil || v.Version != without.Version() {
		t.Fatalf("n3's Redis door shows table %v; want the peers' %x", v, without.Version())
	}
	for _, r := range v.Ranges {
		if r.Owner.Name == clustertest.NodeName(2) {
			t.Fatalf("n3's Redis door shows slots %d-%d as its own", r.Start, r.End)
		}
	}
	// A member still on the table n3 had forwards it a write of the key,
	// n3's there: n3 sends it on to the owner by its peers' table, where
	// reads see it, rather than take it as the owner.
	c.Node(1).PinRing(t1)
	if err := set(1, "lagging"); err != nil {
		t.Fatalf("Set through n2, on n3's old table: %v", err)
	}
	c.Node(1).PinRing(without)
	if v := get(0); v != "lagging" {
		t.Fatalf("Get through n1 after a Set n2 forwarded to the woken n3 by the old table = %q; want lagging (n3 served it as the owner)", v)
	}

	// The coordinator computes a table with n3 again: n3 installs it and
	// serves, without what it cached before.
	c.Node(0).UnpinRing()
	c.Node(1).UnpinRing()
	clustertest.Eventually(t, 10*time.Second, func() error {
		if err := c.Node(2).NotReady(); err != nil {
			return err
		}
		if r := c.Node(2).Ring(); r == nil || !r.Has(clustertest.NodeName(2)) || !newerCounter(r.Version(), without.Version()) {
			return fmt.Errorf("n3 routes by %v", r)
		}
		return nil
	})
	for i := range 3 {
		if v := get(i); v != "lagging" {
			t.Fatalf("Get through node %d once n3 is back = %q; want lagging", i, v)
		}
	}
}

// newerCounter reports whether table version a counts past b (the low 16
// bits name the author).
func newerCounter(a, b uint64) bool { return a>>16 > b>>16 }

// writeThroughCluster starts 3 nodes serving ns, read-through and
// write-through on a fake database, their Redis doors open, and returns
// them with it.
func writeThroughCluster(t *testing.T, ns string) (*clustertest.Cluster, *clustertest.FakeDB) {
	t.Helper()
	db := clustertest.NewFakeDB()
	c := clustertest.Start(t, 3, clustertest.Options{Namespaces: []node.NamespaceSpec{{
		Policy: strategy.Policy{Name: ns, Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour, MaxKeyBytes: 256, MaxValueBytes: 1 << 16},
		Loader: db, Writer: db,
	}}, Configure: func(_ int, cfg *node.Config) { cfg.RESP = node.RESPConfig{Addr: "127.0.0.1:0", DefaultNamespace: ns} }})
	return c, db
}

// getThrough returns a Get of key in ns through node i, which fails the
// test on an error.
func getThrough(t *testing.T, c *clustertest.Cluster, ns, key string) func(i int) string {
	return func(i int) string {
		t.Helper()
		r, err := c.Cache(i).Get(ctxT(t), &pb.GetRequest{Namespace: ns, Key: key})
		if err != nil {
			t.Fatalf("Get through node %d: %v", i, err)
		}
		return string(r.Value)
	}
}
