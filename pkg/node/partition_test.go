package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Issue 13, break 1: a write acknowledged by a node cut off from the others
// (it owns every key in its own ring) must not be hidden, after the
// partition heals, by an older entry cached on the key's owner.
func TestCluster_NoStaleReadAfterPartitionHeals(t *testing.T) {
	for _, mode := range []strategy.WriteMode{strategy.WriteThrough, strategy.WriteBehind} {
		t.Run(fmt.Sprint(map[strategy.WriteMode]string{strategy.WriteThrough: "write-through", strategy.WriteBehind: "write-behind"}[mode]), func(t *testing.T) {
			db := clustertest.NewFakeDB()
			ns := []node.NamespaceSpec{{
				Policy: strategy.Policy{Name: "wt", Read: strategy.ReadThrough, Write: mode, TTL: time.Hour, MaxKeyBytes: 256, MaxValueBytes: 1 << 16},
				Loader: db, Writer: db,
			}}
			// Write-behind: flushing held back, so the cut-off node's write is
			// pending in its journal only when the partition heals.
			c := clustertest.Start(t, 3, clustertest.Options{Namespaces: ns, WriteBehind: true, FlushInterval: time.Hour})
			ctx := ctxT(t)
			// A key the majority side (n1, n2) owns before, during and after.
			key := majorityKey(t, c, "wt")
			if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "wt", Key: key, Value: []byte("A1")}); err != nil {
				t.Fatal(err)
			}
			c.Isolate(2)
			c.WaitRing([]int{0, 1}, []string{"n1", "n2"})
			c.WaitRing([]int{2}, []string{"n3"})
			if _, err := c.Cache(2).Set(ctx, &pb.SetRequest{Namespace: "wt", Key: key, Value: []byte("B1")}); err != nil {
				t.Fatal(err)
			}
			c.Net.Heal()
			c.WaitConverged()
			for i := range 3 {
				got, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: "wt", Key: key})
				if err != nil || string(got.Value) != "B1" {
					t.Fatalf("Get through %s after the heal = %q, %v; want B1, the later acknowledged write", clustertest.NodeName(i), got.GetValue(), err)
				}
			}
		})
	}
}

// Issue 13, the partition residue: while split, both sides wrote one key
// behind; the cut-off node n3 wrote B after the majority wrote A, and
// flushed it first. After the heal, a pending write answers ahead of the
// database, and n3 no longer holds B as pending to compare:
//
//   - the key's owner is on the majority side: its own A is pending. The
//     merge flushes its journal at once (here, once the database is back),
//     A meets B's newer row and is superseded, and what was cached from A
//     is dropped;
//   - the key's owner is n3: it asks the majority's interim owner for its
//     pending write (the merge's handoff window) and gets A, which it
//     answers with but does not cache, since it would not hear that A was
//     superseded.
//
// Either way every node serves B once A's flush is done.
func TestCluster_NoStaleReadWhenBothSidesOfAPartitionWroteBehind(t *testing.T) {
	for _, owner := range []string{"majority", "cut-off"} {
		t.Run(owner+" owner", func(t *testing.T) {
			db := clustertest.NewFakeDB()
			ns := []node.NamespaceSpec{{
				Policy: strategy.Policy{Name: "wb", Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour, MaxKeyBytes: 256, MaxValueBytes: 1 << 16},
				Loader: db, Writer: db,
			}}
			// Flushes only when the test or a merge asks for one.
			c := clustertest.Start(t, 3, clustertest.Options{Namespaces: ns, WriteBehind: true, FlushInterval: time.Hour})
			ctx := ctxT(t)
			key := majorityKey(t, c, "wb")
			if owner == "cut-off" {
				key = keyOwnedBy(t, c, "wb", 2)
			}
			c.Isolate(2)
			c.WaitRing([]int{0, 1}, []string{"n1", "n2"})
			c.WaitRing([]int{2}, []string{"n3"})
			if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "wb", Key: key, Value: []byte("A")}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Cache(2).Set(ctx, &pb.SetRequest{Namespace: "wb", Key: key, Value: []byte("B")}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Admin(2).FlushJournal(ctx, &pb.FlushJournalRequest{}); err != nil {
				t.Fatal(err)
			}
			// The database refuses writes for a while, so A stays pending
			// after the heal, and every node reads the key meanwhile (it
			// may answer A: the window, until A's flush).
			db.FailWrites(errors.New("database down"))
			c.Net.Heal()
			c.WaitConverged()
			for i := range 3 {
				if _, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: "wb", Key: key}); err != nil {
					t.Fatal(err)
				}
			}
			db.FailWrites(nil)
			clustertest.Eventually(t, 5*time.Second, func() error {
				for i := range 3 {
					got, err := c.Cache(i).Get(ctxT(t), &pb.GetRequest{Namespace: "wb", Key: key})
					if err != nil || string(got.Value) != "B" {
						return fmt.Errorf("Get through %s after the heal = %q, %v; want B, the later acknowledged write", clustertest.NodeName(i), got.GetValue(), err)
					}
				}
				return nil
			})
			if row, _ := db.Row(key); string(row) != "B" {
				t.Fatalf("database row = %q, want B", row)
			}
		})
	}
}

// majorityKey returns a key of namespace ns that n1 or n2 owns both in
// c's ring of three and in a ring of n1 and n2 alone.
func majorityKey(t *testing.T, c *clustertest.Cluster, ns string) string {
	t.Helper()
	two, err := ring.Rebalance(c.Node(0).Ring(), []ring.Member{{Name: "n1"}, {Name: "n2"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; ; k++ {
		cand := fmt.Sprintf("s%d", k)
		rk := node.RoutingKey(ns, cand)
		if o := c.Node(0).Ring().Owner(rk).Name; o != "n3" && o == two.Owner(rk).Name {
			return cand
		}
	}
}

// After a heal, no node routes by the other side's table when its version
// is the higher (its coordinator counted more changes): one without the
// node would make it take the live members it lacks for departed, and hand
// their pending write-behind writes to the table's owner, which would serve
// and flush them as its own, superseded ones included. Here n3 is cut off,
// and on its side nodes join it and die until n3's lone table is more
// changes on than the majority's; a write {n1, n2} acknowledged stays pending (the
// database is down) with its origin alone, and neither n1 nor n2 takes the
// other over.
func TestCluster_AHealTakesNoLiveMemberForDeparted(t *testing.T) {
	db := clustertest.NewFakeDB()
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour,
		Namespaces: []node.NamespaceSpec{behindNS("wb", db, 0, 0)}})
	ctx := ctxT(t)
	c.Isolate(2)
	c.WaitRing([]int{0, 1}, []string{"n1", "n2"})
	c.WaitRing([]int{2}, []string{"n3"})
	ahead := func() bool { return c.Node(2).Ring().Version()>>16 > c.Node(0).Ring().Version()>>16 }
	for j := 4; !ahead(); j++ { // counters: the low 16 bits of a version tag its author
		if j > 6 {
			t.Fatalf("n3's table %x is not ahead of the majority's %x: the test does not play the case", c.Node(2).Ring().Version(), c.Node(0).Ring().Version())
		}
		name := clustertest.NodeName(j - 1)
		c.Net.Cut(name, "n1")
		c.Net.Cut(name, "n2")
		i := c.AddNode()
		c.WaitRing([]int{2, i}, []string{"n3", name})
		c.Kill(i)
		c.WaitRing([]int{2}, []string{"n3"})
	}
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "wb", Key: "k", Value: []byte("A")}); err != nil {
		t.Fatal(err)
	}
	db.FailWrites(errors.New("database down")) // A stays pending: the merge's flush fails
	c.Net.Heal()
	c.WaitConverged()
	var pending uint64
	for i := range 3 {
		j := journalOf(t, c, i)
		pending += j.Pending
		if i < 2 && j.Takeovers != 0 {
			t.Errorf("%s took over %d records in %d takeovers after the heal, of a member alive all along", clustertest.NodeName(i), j.TakenOver, j.Takeovers)
		}
	}
	if pending != 1 {
		t.Errorf("%d pending writes across the nodes after the heal; want 1, with its origin", pending)
	}
}
