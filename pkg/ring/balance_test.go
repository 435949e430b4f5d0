package ring

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var churnSeed = flag.Uint64("ring.seed", 0, "seed of TestRebalance_RandomChurn (0: from the clock)")

// figures measures what the issue bounds for a cluster of n members: the
// busiest member's share of New over the mean, and the partitions one join
// and one leave (of the busiest member) move over the ideal.
func figures(t testing.TB, cfg Config, n int) (maxOverMean, joinOverIdeal, leaveOverIdeal float64) {
	t.Helper()
	ms := members(n)
	r := mustNew(t, cfg, ms)
	parts := float64(r.PartitionCount())
	busiest := 0
	for i, m := range ms {
		if r.Partitions(m.Name) > r.Partitions(ms[busiest].Name) {
			busiest = i
		}
	}
	maxOverMean = float64(r.Partitions(ms[busiest].Name)) / (parts / float64(n))
	joined, err := Rebalance(r, append(slices.Clone(ms), Member{Name: "joiner"}), 2)
	if err != nil {
		t.Fatal(err)
	}
	left, err := Rebalance(r, slices.Delete(slices.Clone(ms), busiest, busiest+1), 2)
	if err != nil {
		t.Fatal(err)
	}
	joinOverIdeal = float64(len(Diff(r, joined))) / (parts / float64(n+1))
	leaveOverIdeal = float64(len(Diff(r, left))) / (parts / float64(n))
	return maxOverMean, joinOverIdeal, leaveOverIdeal
}

func TestRebalance_BoundsForEverySize3To100(t *testing.T) {
	worst := [3]float64{}
	for n := 3; n <= 100; n++ {
		b, j, l := figures(t, DefaultConfig(), n)
		if b > 1.05 || j > 1.1 || l > 1.1 {
			t.Errorf("%d members: busiest %.3f× the mean (≤ 1.05), join moves %.3f× the ideal, leave %.3f× (≤ 1.1)", n, b, j, l)
		}
		worst = [3]float64{max(worst[0], b), max(worst[1], j), max(worst[2], l)}
	}
	t.Logf("worst over 3..100 members: busiest %.3f× the mean, join %.3f× the ideal, leave %.3f×", worst[0], worst[1], worst[2])
}

func TestRebalance_JoinTakesOnlyForTheJoiner(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(10))
	grown, err := Rebalance(r, members(11), 2)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, grown)
	moves := Diff(r, grown)
	for _, m := range moves {
		if m.To.Name != "n11" {
			t.Fatalf("partition %d moved %s → %s, not to the joiner", m.Partition, m.From.Name, m.To.Name)
		}
	}
	if want := DefaultPartitionCount / 11; len(moves) != want {
		t.Fatalf("join moved %d partitions, want ⌊P/11⌋ = %d", len(moves), want)
	}
}

func TestRebalance_LeaveMovesOnlyTheLeaversPartitions(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(10))
	shrunk, err := Rebalance(r, members(10)[1:], 2)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, shrunk)
	moves := Diff(r, shrunk)
	for _, m := range moves {
		if m.From.Name != "n1" {
			t.Fatalf("partition %d moved %s → %s, not from the leaver", m.Partition, m.From.Name, m.To.Name)
		}
	}
	if len(moves) != r.Partitions("n1") {
		t.Fatalf("leave moved %d partitions, the leaver owned %d", len(moves), r.Partitions("n1"))
	}
}

func TestRebalance_TakesAddressesFromTheNewMembers(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(3))
	ms := members(3)
	ms[1].Addr = "10.0.0.2:7101" // n2 restarted elsewhere
	moved, err := Rebalance(r, ms, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(Diff(r, moved)) != 0 || moved.Members()[1].Addr != "10.0.0.2:7101" {
		t.Fatalf("table changed or address kept: %+v", moved.Members())
	}
	if _, err := Rebalance(nil, ms, 1); !errors.Is(err, ErrBadTable) {
		t.Fatalf("Rebalance(nil): err = %v", err)
	}
}

// minimalMoves is the fewest partitions any balanced table over members
// can differ from prev by: those of departed members, plus what survivors
// hold beyond their share, the larger shares going to the largest holders.
func minimalMoves(prev *Ring, ms []Member) int {
	var kept []int
	for _, m := range ms {
		kept = append(kept, prev.Partitions(m.Name))
	}
	slices.SortFunc(kept, func(a, b int) int { return b - a })
	parts, n := prev.PartitionCount(), len(ms)
	moves := parts
	for i, c := range kept {
		target := parts / n
		if i < parts%n {
			target++
		}
		moves -= min(c, target)
	}
	return moves
}

func TestRebalance_RandomChurn(t *testing.T) {
	seed := *churnSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -ring.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	cfg := DefaultConfig()
	cfg.PartitionCount = []int{256, 1024, 4096}[rng.IntN(3)]
	r := mustNew(t, cfg, members(1+rng.IntN(20)))
	next := 1000
	for step := range 150 {
		ms := slices.Clone(r.Members())
		leaves, joins := rng.IntN(3), rng.IntN(3)
		for range min(leaves, len(ms)-1) {
			i := rng.IntN(len(ms))
			ms = slices.Delete(ms, i, i+1)
		}
		for range joins {
			ms = append(ms, Member{Name: fmt.Sprintf("j%d", next)})
			next++
		}
		rng.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
		got, err := Rebalance(r, ms, uint64(step+2))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		checkBalanced(t, got)
		moves := Diff(r, got)
		if want := minimalMoves(r, ms); len(moves) != want {
			t.Fatalf("step %d: %d → %d members moved %d partitions, the minimum is %d", step, len(r.Members()), len(ms), len(moves), want)
		}
		gained, lost := map[string]bool{}, map[string]bool{}
		for _, m := range moves {
			gained[m.To.Name], lost[m.From.Name] = true, true
		}
		for name := range gained {
			if lost[name] {
				t.Fatalf("step %d: %s both gave and took partitions", step, name)
			}
		}
		again, _ := Rebalance(r, reversed(ms), 0)
		if len(Diff(got, again)) != 0 {
			t.Fatalf("step %d: member order changed the table", step)
		}
		r = got
	}
	t.Logf("%d members, %d partitions, %d slot ranges after 150 steps", len(r.Members()), r.PartitionCount(), len(r.SlotRanges()))
}

func BenchmarkRebalanceJoin100(b *testing.B) {
	r := mustNew(b, DefaultConfig(), members(100))
	ms := members(101)
	for b.Loop() {
		if _, err := Rebalance(r, ms, 2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRebalanceLeave100(b *testing.B) {
	r := mustNew(b, DefaultConfig(), members(100))
	ms := members(100)[1:]
	for b.Loop() {
		if _, err := Rebalance(r, ms, 2); err != nil {
			b.Fatal(err)
		}
	}
}
