package ring

import (
	"slices"
	"testing"
)

// without returns the members of r except the one named name.
func without(r *Ring, name string) []Member {
	return slices.DeleteFunc(slices.Clone(r.Members()), func(m Member) bool { return m.Name == name })
}

func TestSuccessors_AreTheOwnersAfterEachFailure(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(7))
	for p := 0; p < r.PartitionCount(); p += 37 {
		got := r.Successors(p, 3)
		want := []Member{r.PartitionOwner(p)}
		cur := r
		for len(want) < 3 {
			next, err := Rebalance(cur, without(cur, want[len(want)-1].Name), 0)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, next.PartitionOwner(p))
			cur = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Successors(%d, 3) = %v, want %v", p, got, want)
		}
	}
}

func TestSuccessors_DistinctAndClamped(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(3))
	for p := range r.PartitionCount() {
		s := r.Successors(p, 5)
		if len(s) != 3 || s[0] != r.PartitionOwner(p) {
			t.Fatalf("Successors(%d, 5) = %v: want 3, the owner first", p, s)
		}
		if s[0] == s[1] || s[1] == s[2] || s[0] == s[2] {
			t.Fatalf("Successors(%d, 5) = %v: repeats a member", p, s)
		}
	}
	if s := r.Successors(0, 0); len(s) != 1 {
		t.Fatalf("Successors(0, 0) = %v, want the owner alone", s)
	}
	if r.ReplicaTable(2) != r.ReplicaTable(2) {
		t.Fatal("ReplicaTable is computed again for the same ring")
	}
}

func TestReplicaTable_SpreadsSecondCopiesEvenly(t *testing.T) {
	const n = 10
	r := mustNew(t, DefaultConfig(), members(n))
	rt := r.ReplicaTable(2)
	seconds := map[string]int{}
	for p := range r.PartitionCount() {
		seconds[rt.Copy(p, 1).Name]++
	}
	// Each member takes its share of every other member's partitions.
	mean := float64(r.PartitionCount()) / n
	for name, c := range seconds {
		if float64(c) > 1.05*mean || float64(c) < 0.95*mean {
			t.Errorf("%s holds the second copy of %d partitions, mean %.0f", name, c, mean)
		}
	}
}

func benchmarkReplicaTable(b *testing.B, n, copies int) {
	ms := members(n)
	r := mustNew(b, DefaultConfig(), ms)
	for i := 0; b.Loop(); i++ {
		// A fresh ring each time: the table is cached per ring.
		fresh, _ := Rebalance(r, ms, uint64(i))
		sink += fresh.ReplicaTable(copies).Copies()
	}
}

func BenchmarkReplicaTable10x2(b *testing.B)  { benchmarkReplicaTable(b, 10, 2) }
func BenchmarkReplicaTable100x2(b *testing.B) { benchmarkReplicaTable(b, 100, 2) }
func BenchmarkReplicaTable100x3(b *testing.B) { benchmarkReplicaTable(b, 100, 3) }
