package ring

import (
	"fmt"
	"runtime"
	"testing"
)

// The costs of a partition table at cluster sizes beyond the in-process
// scale test (internal/clustertest): docs/capacity-planning.md, "Size of a
// cluster", extrapolates to 500 nodes from them.

var scaleSizes = []int{50, 500}

// BenchmarkNew is the first table of a cluster, placed by the library and
// balanced.
func BenchmarkNew(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			ms := members(n)
			for b.Loop() {
				mustNew(b, DefaultConfig(), ms)
			}
		})
	}
}

// BenchmarkRebalance is the coordinator's work on each join or leave.
func BenchmarkRebalance(b *testing.B) {
	for _, n := range scaleSizes {
		r := mustNew(b, DefaultConfig(), members(n))
		for _, c := range []struct {
			name string
			ms   []Member
		}{{"join", members(n + 1)}, {"leave", members(n)[1:]}} {
			b.Run(fmt.Sprintf("%s/members=%d", c.name, n), func(b *testing.B) {
				for b.Loop() {
					if _, err := Rebalance(r, c.ms, 2); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFromOwners is what every other node does with a table it
// receives.
func BenchmarkFromOwners(b *testing.B) {
	for _, n := range scaleSizes {
		r := mustNew(b, DefaultConfig(), members(n))
		ms, owners := r.Members(), r.Owners()
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := FromOwners(DefaultConfig(), ms, owners, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestRing_HeapPerTable measures the live heap of one table as a node
// holds it: received (FromOwners, with member names and addresses of its
// own) and with the successor table that write-behind replication asks
// for. The owner array dominates and does not grow with the members.
func TestRing_HeapPerTable(t *testing.T) {
	const copies = 16
	for _, n := range scaleSizes {
		src := mustNew(t, DefaultConfig(), members(n))
		owners := src.Owners()
		keep := make([]*Ring, copies)
		before := liveHeap()
		for i := range keep {
			r, err := FromOwners(DefaultConfig(), members(n), owners, 2)
			if err != nil {
				t.Fatal(err)
			}
			keep[i] = r
		}
		bare := (liveHeap() - before) / copies
		for _, r := range keep {
			r.ReplicaTable(2)
		}
		withReplicas := (liveHeap() - before) / copies
		runtime.KeepAlive(keep)
		t.Logf("members=%d partitions=%d: %d B per table, %d B with its successor table for 2 copies",
			n, src.PartitionCount(), bare, withReplicas)
		// The owners alone are 2 B per partition; names, addresses and the
		// index add some 100 B per member. 4× that is a leak, not a table.
		floor := uint64(2 * src.PartitionCount())
		if bare < floor || bare > 4*(floor+uint64(100*n)) {
			t.Fatalf("members=%d: %d B per table, want between %d and %d", n, bare, floor, 4*(floor+uint64(100*n)))
		}
	}
}
