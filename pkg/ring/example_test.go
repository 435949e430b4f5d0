package ring_test

import (
	"fmt"

	"github.com/ringcache/ringcache/pkg/ring"
)

func members(names ...string) []ring.Member {
	ms := make([]ring.Member, len(names))
	for i, n := range names {
		ms[i] = ring.Member{Name: n, Addr: n + ".cache.internal:7101"}
	}
	return ms
}

func ExampleNew() {
	r, err := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3"), 1)
	if err != nil {
		panic(err)
	}
	fmt.Println("version", r.Version(), "partitions", r.PartitionCount())
	// No member owns more than ⌈Load × 271/3⌉ = 113 partitions (Load 1.25).
	for _, m := range r.Members() {
		fmt.Println(m.Name, m.Addr, r.Partitions(m.Name))
	}

	_, err = ring.New(ring.DefaultConfig(), members("n1", "n1"), 2)
	fmt.Println(err)
	// Output:
	// version 1 partitions 271
	// n1 n1.cache.internal:7101 81
	// n2 n2.cache.internal:7101 77
	// n3 n3.cache.internal:7101 113
	// ring: duplicate member name: "n1"
}

func ExampleRing_Owner() {
	r, err := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3"), 1)
	if err != nil {
		panic(err)
	}
	// Nodes and ring-aware clients hash the namespace and the key together.
	k := ring.Key("users", "42")
	p := r.PartitionOf(k)
	fmt.Println("partition", p, "same as PartitionFor:", p == ring.PartitionFor(k, r.PartitionCount()))
	fmt.Println("owner", r.Owner(k).Name, r.Owner(k) == r.PartitionOwner(p))

	// Every node that sees the same members builds the same ring.
	again, _ := ring.New(ring.DefaultConfig(), members("n3", "n1", "n2"), 7)
	fmt.Println("agree:", again.Owner(k) == r.Owner(k))
	// Output:
	// partition 69 same as PartitionFor: true
	// owner n2 true
	// agree: true
}

func ExampleDiff() {
	old, _ := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3"), 1)
	grown, _ := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3", "n4"), 2)
	moves := ring.Diff(old, grown)
	toNew := 0
	for _, m := range moves {
		if m.To.Name == "n4" {
			toNew++
		} else { // the load bound shifts a few partitions between old members
			fmt.Printf("partition %d: %s → %s\n", m.Partition, m.From.Name, m.To.Name)
		}
	}
	// Adding a fourth node moves about a quarter of the partitions, nearly
	// all of them to the new node.
	fmt.Printf("%d of %d partitions move, %d of them to n4\n", len(moves), grown.PartitionCount(), toNew)
	// Output:
	// partition 268: n1 → n3
	// 85 of 271 partitions move, 84 of them to n4
}
