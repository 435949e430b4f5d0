package engine

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ringcache/ringcache/pkg/ring"
)

func members(names ...string) []ring.Member {
	var out []ring.Member
	for _, n := range names {
		out = append(out, ring.Member{Name: n, Addr: n + ":7100"})
	}
	return out
}

func mustRing(t *testing.T, ms []ring.Member) *ring.Ring {
	t.Helper()
	r, err := ring.New(ring.Config{}, ms, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func rebalance(t *testing.T, prev *ring.Ring, ms []ring.Member) *ring.Ring {
	t.Helper()
	r, err := ring.Rebalance(prev, ms, prev.Version()+1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The first replica of every partition is its owner in the table the
// coordinator rebalances to without its owner, so when the owner dies the
// new owner already holds its writes; the second is the owner once both
// are gone.
func TestSuccessors_AreTheOwnersOfTheRingsWithoutThePreviousOnes(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var names []string
			for i := range n {
				names = append(names, fmt.Sprintf("n%d", i+1))
			}
			all := members(names...)
			r := mustRing(t, all)
			chains := successors(r, 2)
			for p, chain := range chains {
				owner := r.PartitionOwner(p)
				without := rebalance(t, r, slices.DeleteFunc(slices.Clone(all), func(m ring.Member) bool { return m.Name == owner.Name }))
				if want := without.PartitionOwner(p); chain[0] != want {
					t.Fatalf("partition %d: first replica %s, want %s (its owner without %s)", p, chain[0].Name, want.Name, owner.Name)
				}
				if n == 2 {
					if len(chain) != 1 {
						t.Fatalf("partition %d: %d replicas among 2 members", p, len(chain))
					}
					continue
				}
				rest := slices.DeleteFunc(slices.Clone(all), func(m ring.Member) bool { return m.Name == owner.Name || m.Name == chain[0].Name })
				if want := rebalance(t, without, rest).PartitionOwner(p); chain[1] != want {
					t.Fatalf("partition %d: second replica %s, want %s", p, chain[1].Name, want.Name)
				}
			}
			// The takeover moves nothing: the ring every node builds once an
			// owner died names the first replica as the new owner.
			dead := all[0].Name
			after := rebalance(t, r, all[1:])
			for p, chain := range chains {
				if r.PartitionOwner(p).Name == dead && after.PartitionOwner(p) != chain[0] {
					t.Fatalf("partition %d: after %s died its owner is %s, its replica was %s", p, dead, after.PartitionOwner(p).Name, chain[0].Name)
				}
			}
		})
	}
}

func TestTargets_NeverThisNodeAndTheOwnerFirstWhenThisNodeIsNot(t *testing.T) {
	all := members("n1", "n2", "n3")
	r := mustRing(t, all)
	e := &Engine{cfg: Config{Self: "n1"}, repl: &replication{depth: 2}}
	for p := range r.PartitionCount() {
		owner := r.PartitionOwner(p)
		got := e.targets(r, p, 1)
		if len(got) != 1 || got[0].Name == "n1" {
			t.Fatalf("partition %d: targets %v", p, got)
		}
		if owner.Name != "n1" && got[0] != owner {
			t.Fatalf("partition %d owned by %s: a write made on n1 goes first to its owner, got %v", p, owner.Name, got)
		}
		if owner.Name == "n1" && got[0] != e.replicasOf(r, p, 2)[0] {
			t.Fatalf("partition %d: targets %v, want its replica", p, got)
		}
		if two := e.targets(r, p, 2); len(two) != 2 || two[0].Name == two[1].Name {
			t.Fatalf("partition %d: two targets %v", p, two)
		}
	}
}

func TestChangedPartitions_FlagsMovedOwnersAndReplicas(t *testing.T) {
	e := &Engine{}
	three := mustRing(t, members("n1", "n2", "n3"))
	old := e.replicaTable(three)
	if got := changedPartitions(old, old); slices.Contains(got, true) {
		t.Fatal("a table compared with itself has changed partitions")
	}
	four := mustRing(t, members("n1", "n2", "n3", "n4"))
	cur := e.replicaTable(four)
	changed := changedPartitions(old, cur)
	n := 0
	for p, c := range changed {
		moved := three.PartitionOwner(p).Name != four.PartitionOwner(p).Name || old.chains[p][0].Name != cur.chains[p][0].Name
		if c != moved {
			t.Fatalf("partition %d: changed %v, owner or first replica moved %v", p, c, moved)
		}
		if c {
			n++
		}
	}
	if n == 0 || n == len(changed) {
		t.Fatalf("%d of %d partitions changed when n4 joined; want some, not all", n, len(changed))
	}
	t.Logf("n4 joining changes the owner or replicas of %d of %d partitions", n, len(changed))
}

func TestPolicy_Copies(t *testing.T) {
	for _, tc := range []struct {
		p                    policy
		members              int
		want, target, needed int
	}{
		{policy{}, 3, 2, 2, 2},                    // default: 2, both needed
		{policy{}, 1, 1, 1, 1},                    // a cluster of one keeps the old guarantee
		{policy{replicas: 1}, 3, 1, 1, 1},         // opted out
		{policy{replicas: 2, min: 1}, 3, 2, 2, 1}, // degraded accepted, counted
		{policy{replicas: 3}, 2, 3, 2, 2},         // capped by the ring, counted
		{policy{replicas: 2, min: 2}, 1, 2, 1, 2}, // needs more than the ring holds: fails
	} {
		w, tg, nd := tc.p.copies(tc.members)
		if w != tc.want || tg != tc.target || nd != tc.needed {
			t.Errorf("%+v over %d members: want %d target %d need %d; got %d %d %d", tc.p, tc.members, tc.want, tc.target, tc.needed, w, tg, nd)
		}
	}
}
