package node_test

import (
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
			key := ""
			two, err := ring.Rebalance(c.Node(0).Ring(), []ring.Member{{Name: "n1"}, {Name: "n2"}}, 1)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; key == ""; k++ {
				cand := fmt.Sprintf("s%d", k)
				rk := node.RoutingKey("wt", cand)
				if o := c.Node(0).Ring().Owner(rk).Name; o != "n3" && o == two.Owner(rk).Name {
					key = cand
				}
			}
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
