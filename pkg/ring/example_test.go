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
	// Shares are exact: ⌊4096/3⌋ = 1365 or one more.
	for _, m := range r.Members() {
		fmt.Println(m.Name, m.Addr, r.Partitions(m.Name))
	}

	_, err = ring.New(ring.DefaultConfig(), members("n1", "n1"), 2)
	fmt.Println(err)
	// Output:
	// version 1 partitions 4096
	// n1 n1.cache.internal:7101 1366
	// n2 n2.cache.internal:7101 1365
	// n3 n3.cache.internal:7101 1365
	// ring: duplicate member name: "n1"
}

func ExampleRing_Owner() {
	r, err := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3"), 1)
	if err != nil {
		panic(err)
	}
	// Nodes route by the routing key; its partition is the one of the Redis
	// key "users:42" (the default namespace is "").
	k := ring.Key("users", "42")
	p := r.PartitionOf(k)
	fmt.Println("slot", ring.Slot("users:42"), "partition", p)
	fmt.Println("same as a client computes:", p == ring.PartitionFor("", "users", "42", r.PartitionCount()))
	fmt.Println("owner", r.Owner(k).Name, r.Owner(k) == r.PartitionOwner(p))
	// Output:
	// slot 9664 partition 2416
	// same as a client computes: true
	// owner n1 true
}

func ExampleRebalance() {
	old, _ := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3"), 1)
	grown, _ := ring.Rebalance(old, members("n1", "n2", "n3", "n4"), 2)
	from := map[string]int{}
	for _, m := range ring.Diff(old, grown) {
		from[m.From.Name+" → "+m.To.Name]++
	}
	// A fourth node takes ⌊4096/4⌋ partitions, a third of each old node's,
	// and nothing else moves.
	fmt.Println(from)
	shrunk, _ := ring.Rebalance(grown, members("n1", "n2", "n4"), 3)
	fmt.Println(len(ring.Diff(grown, shrunk)), "partitions move when n3 leaves: its own", grown.Partitions("n3"))
	// Output:
	// map[n1 → n4:342 n2 → n4:341 n3 → n4:341]
	// 1024 partitions move when n3 leaves: its own 1024
}

func ExampleRing_SlotRanges() {
	r, _ := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3"), 1)
	// What CLUSTER SLOTS lists: runs of contiguous slots with one owner.
	ranges := r.SlotRanges()
	fmt.Println(len(ranges), "ranges; the first:", ranges[0].First, "-", ranges[0].Last, ranges[0].Owner.Name)
	// Output:
	// 10 ranges; the first: 0 - 743 n1
}

func ExampleRing_Successors() {
	r, _ := ring.New(ring.DefaultConfig(), members("n1", "n2", "n3", "n4"), 1)
	// The owner of partition 0, then who would own it if the owner failed,
	// then who if that one failed too.
	for _, m := range r.Successors(0, 3) {
		fmt.Print(m.Name, " ")
	}
	fmt.Println()
	// Output:
	// n1 n3 n2
}
