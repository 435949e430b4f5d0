package ring

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"
)

func members(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("n%d", i+1), Addr: fmt.Sprintf("127.0.0.1:%d", 7101+i)}
	}
	return ms
}

func mustNew(t testing.TB, cfg Config, ms []Member) *Ring {
	t.Helper()
	r, err := New(cfg, ms, 1)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRing_PartitionsWithinLoadBound(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 16} {
		r := mustNew(t, DefaultConfig(), members(n))
		bound := int(math.Ceil(float64(r.PartitionCount()/n) * r.LoadFactor()))
		total := 0
		for _, m := range r.Members() {
			got := r.Partitions(m.Name)
			if got > bound {
				t.Errorf("n=%d: %s owns %d partitions, bound %d", n, m.Name, got, bound)
			}
			if got == 0 {
				t.Errorf("n=%d: %s owns no partition", n, m.Name)
			}
			total += got
		}
		if total != r.PartitionCount() {
			t.Errorf("n=%d: %d partitions placed, want %d", n, total, r.PartitionCount())
		}
	}
}

func TestRing_KeysSpreadWithinLoadBound(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(3))
	counts := map[string]int{}
	const keys = 30000
	for i := range keys {
		counts[r.Owner("users/"+strconv.Itoa(i)).Name]++
	}
	// Each member owns at most Load×average partitions; keys follow
	// partitions, so allow the load bound plus hashing noise.
	limit := int(float64(keys) / 3 * (r.LoadFactor() + 0.1))
	for name, c := range counts {
		if c > limit || c < keys/10 {
			t.Errorf("%s holds %d of %d keys (limit %d)", name, c, keys, limit)
		}
	}
}

func TestRing_AddingFourthMemberMovesAboutAQuarter(t *testing.T) {
	old := mustNew(t, DefaultConfig(), members(3))
	grown := mustNew(t, DefaultConfig(), members(4))
	moves := Diff(old, grown)
	frac := float64(len(moves)) / float64(old.PartitionCount())
	t.Logf("adding a 4th member moved %d of %d partitions (%.1f%%)", len(moves), old.PartitionCount(), frac*100)
	if frac < 0.15 || frac > 0.40 {
		t.Fatalf("moved %.1f%% of partitions, want about 25%%", frac*100)
	}
	for _, m := range moves {
		if m.To.Name != "n4" && m.From.Name == m.To.Name {
			t.Fatalf("bogus move %+v", m)
		}
	}
}

func TestRing_SameMembersSameRingRegardlessOfOrder(t *testing.T) {
	ms := members(5)
	a := mustNew(t, DefaultConfig(), ms)
	rev := make([]Member, len(ms))
	for i := range ms {
		rev[i] = ms[len(ms)-1-i]
	}
	b := mustNew(t, DefaultConfig(), rev)
	if d := Diff(a, b); len(d) != 0 {
		t.Fatalf("member order changed %d owners", len(d))
	}
}

func TestRing_UnplaceableLoadDoesNotPanic(t *testing.T) {
	// 271/3 = 90 (integer division) so Load=1 leaves one partition without
	// room; the library panics, New must instead widen the bound.
	r, err := New(Config{Load: 1}, members(3), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.LoadFactor() <= 1 {
		t.Fatalf("load factor %.2f, want raised above 1", r.LoadFactor())
	}
	// More members than partitions cannot be placed at all.
	if _, err := New(Config{PartitionCount: 3}, members(5), 1); !errors.Is(err, ErrTooManyMembers) {
		t.Fatalf("err = %v, want ErrTooManyMembers", err)
	}
}

func TestRing_RejectsBadInput(t *testing.T) {
	if _, err := New(DefaultConfig(), nil, 1); !errors.Is(err, ErrNoMembers) {
		t.Errorf("no members: err = %v", err)
	}
	if _, err := New(DefaultConfig(), []Member{{Name: "a"}, {Name: "a"}}, 1); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate: err = %v", err)
	}
	for _, load := range []float64{0.5, 9, math.NaN(), math.Inf(1)} {
		if _, err := New(Config{Load: load}, members(2), 1); !errors.Is(err, ErrBadConfig) {
			t.Errorf("load %v: err = %v", load, err)
		}
	}
}

func FuzzRing_New(f *testing.F) {
	f.Add(uint16(271), uint8(3), 1.25)
	f.Add(uint16(7), uint8(7), 1.0)
	f.Fuzz(func(t *testing.T, parts uint16, n uint8, load float64) {
		r, err := New(Config{PartitionCount: int(parts%1024) + 1, Load: load}, members(int(n%64)+1), 1)
		if err != nil {
			return
		}
		if r == nil || r.Owner("k").Name == "" {
			t.Fatal("ring without owner")
		}
	})
}

func benchmarkOwner(b *testing.B, n int) {
	r := mustNew(b, DefaultConfig(), members(n))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "users/" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = r.Owner(keys[i&1023])
	}
}

func BenchmarkOwner3(b *testing.B)   { benchmarkOwner(b, 3) }
func BenchmarkOwner16(b *testing.B)  { benchmarkOwner(b, 16) }
func BenchmarkOwner128(b *testing.B) { benchmarkOwner(b, 128) }

func BenchmarkNew16(b *testing.B) {
	ms := members(16)
	for b.Loop() {
		if _, err := New(DefaultConfig(), ms, 1); err != nil {
			b.Fatal(err)
		}
	}
}
