package ring

import (
	"errors"
	"fmt"
	"math"
	"slices"
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

// checkBalanced fails unless every member owns ⌊P/N⌋ or ⌈P/N⌉ partitions.
func checkBalanced(t testing.TB, r *Ring) {
	t.Helper()
	n, p := len(r.Members()), r.PartitionCount()
	total := 0
	for _, m := range r.Members() {
		got := r.Partitions(m.Name)
		if got != p/n && got != (p+n-1)/n {
			t.Fatalf("%d members: %s owns %d partitions, want %d or %d", n, m.Name, got, p/n, (p+n-1)/n)
		}
		total += got
	}
	if total != p {
		t.Fatalf("%d partitions owned, want %d", total, p)
	}
}

func TestNew_BalancesToExactShares(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 7, 16, 100, 256} {
		checkBalanced(t, mustNew(t, Config{PartitionCount: 256}, members(min(n, 256))))
		checkBalanced(t, mustNew(t, DefaultConfig(), members(n)))
	}
}

func TestNew_PlacesContiguousSlotRanges(t *testing.T) {
	for _, n := range []int{1, 3, 10} {
		r := mustNew(t, DefaultConfig(), members(n))
		// One arc per virtual point at most, merged where neighbours share
		// an owner; balancing moves boundaries and adds none.
		got, limit := len(r.SlotRanges()), n*DefaultReplicationFactor
		t.Logf("%d members: %d slot ranges", n, got)
		if got > limit {
			t.Errorf("%d members: %d slot ranges, want at most %d", n, got, limit)
		}
	}
}

func TestNew_SameMembersSameTableRegardlessOfOrder(t *testing.T) {
	ms := members(5)
	a := mustNew(t, DefaultConfig(), ms)
	b := mustNew(t, DefaultConfig(), reversed(ms))
	if d := Diff(a, b); len(d) != 0 {
		t.Fatalf("member order changed %d owners", len(d))
	}
}

func TestRing_KeysSpreadEvenly(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(3))
	counts := map[string]int{}
	const keys = 30000
	for i := range keys {
		counts[r.Owner(Key("users", strconv.Itoa(i))).Name]++
	}
	for name, c := range counts {
		if math.Abs(float64(c)-keys/3) > keys/3*0.05 {
			t.Errorf("%s holds %d of %d keys, want %d ± 5%%", name, c, keys, keys/3)
		}
	}
}

func TestRing_OwnerIsAFunctionOfTheRedisSlot(t *testing.T) {
	r := mustNew(t, Config{DefaultNamespace: "main"}, members(7))
	for _, c := range []struct{ ns, key, redisKey string }{
		{"main", "foo", "foo"},
		{"main", "users:42", "users:42"},
		{"users", "42", "users:42"}, // the same Redis key, so the same owner
		{"users", "{u7}.a", "{u7}"},
		{"orders", "{u7}.b", "{u7}"}, // one hash tag, one slot, whatever the namespace
	} {
		want := r.SlotPartition(Slot(c.redisKey))
		if got := r.PartitionOf(Key(c.ns, c.key)); got != want {
			t.Errorf("PartitionOf(%q, %q) = %d, want %d (the partition of %q)", c.ns, c.key, got, want, c.redisKey)
		}
		if got := PartitionFor("main", c.ns, c.key, r.PartitionCount()); got != want {
			t.Errorf("PartitionFor(%q, %q) = %d, want %d", c.ns, c.key, got, want)
		}
		if got := r.PartitionOfKey(c.ns, c.key); got != want {
			t.Errorf("PartitionOfKey(%q, %q) = %d, want %d", c.ns, c.key, got, want)
		}
		if r.Owner(Key(c.ns, c.key)) != r.PartitionOwner(want) {
			t.Errorf("Owner(%q, %q) is not the owner of partition %d", c.ns, c.key, want)
		}
	}
	// A routing key without a zero byte is a Redis key of the default namespace.
	if r.PartitionOf("foo") != r.PartitionOf(Key("main", "foo")) {
		t.Error(`PartitionOf("foo") differs from PartitionOf(Key("main", "foo"))`)
	}
}

func TestRing_PartitionsAreContiguousSlotRanges(t *testing.T) {
	for _, parts := range []int{256, 4096, 16384} {
		r := mustNew(t, Config{PartitionCount: parts}, members(3))
		next := 0
		for p := range parts {
			first, last := r.PartitionSlots(p)
			if int(first) != next || last < first {
				t.Fatalf("P=%d: partition %d holds slots %d..%d, want from %d", parts, p, first, last, next)
			}
			if r.SlotPartition(first) != p || r.SlotPartition(last) != p {
				t.Fatalf("P=%d: slots %d..%d not in partition %d", parts, first, last, p)
			}
			next = int(last) + 1
		}
		if next != Slots {
			t.Fatalf("P=%d: partitions end at slot %d", parts, next)
		}
	}
}

func TestSlotRanges_CoverEverySlotOnce(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(10))
	next := 0
	for i, sr := range r.SlotRanges() {
		if int(sr.First) != next || sr.Last < sr.First {
			t.Fatalf("range %d is %d..%d, want from %d", i, sr.First, sr.Last, next)
		}
		if o := r.PartitionOwner(r.SlotPartition(sr.First)); o != sr.Owner {
			t.Fatalf("range %d owned by %s, its first partition by %s", i, sr.Owner.Name, o.Name)
		}
		next = int(sr.Last) + 1
	}
	if next != Slots {
		t.Fatalf("ranges end at slot %d", next)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{PartitionCount: 256}, true},
		{Config{PartitionCount: 16384}, true},
		{Config{PartitionCount: 128}, false},
		{Config{PartitionCount: 271}, false},
		{Config{PartitionCount: 32768}, false},
		{Config{PartitionCount: -4}, false},
		{Config{ReplicationFactor: -1}, false},
		{Config{Load: 0.5}, false},
		{Config{Load: 9}, false},
		{Config{Load: math.NaN()}, false},
		{Config{Load: math.Inf(1)}, false},
	} {
		err := c.cfg.Validate()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadConfig)) {
			t.Errorf("%+v: Validate() = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

func TestNew_RejectsBadInput(t *testing.T) {
	if _, err := New(DefaultConfig(), nil, 1); !errors.Is(err, ErrNoMembers) {
		t.Errorf("no members: err = %v", err)
	}
	if _, err := New(DefaultConfig(), []Member{{Name: "a"}, {Name: "a"}}, 1); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate: err = %v", err)
	}
	if _, err := New(Config{PartitionCount: 256}, members(257), 1); !errors.Is(err, ErrTooManyMembers) {
		t.Errorf("257 members on 256 partitions: err = %v", err)
	}
	if _, err := New(Config{PartitionCount: 1000}, members(2), 1); !errors.Is(err, ErrBadConfig) {
		t.Errorf("1000 partitions: err = %v", err)
	}
}

func TestNew_UnplaceableLoadDoesNotPanic(t *testing.T) {
	// consistent's average is ⌈⌊P/N⌋ × Load⌉; at Load 1 a P not divisible
	// by N leaves partitions without room and the library panics.
	r, err := New(Config{Load: 1}, members(3), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.LoadFactor() <= 1 {
		t.Fatalf("load factor %.2f, want raised above 1", r.LoadFactor())
	}
	checkBalanced(t, r)
}

func TestFromOwners_RoundTripsATable(t *testing.T) {
	r := mustNew(t, DefaultConfig(), members(5))
	// The sender lists its members in its own order.
	wire := reversed(r.Members())
	owners := r.Owners()
	for p, o := range owners {
		owners[p] = uint32(len(wire)) - 1 - o
	}
	got, err := FromOwners(DefaultConfig(), wire, owners, 9)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(r, got); len(d) != 0 || got.Version() != 9 {
		t.Fatalf("round trip: %d partitions differ, version %d", len(d), got.Version())
	}
	if !slices.Equal(got.Owners(), r.Owners()) {
		t.Fatal("Owners() differ after a round trip")
	}
}

func TestFromOwners_RejectsBadTables(t *testing.T) {
	ms := members(3)
	good := make([]uint32, DefaultPartitionCount)
	for _, c := range []struct {
		name   string
		owners []uint32
		ms     []Member
		want   error
	}{
		{"short", good[:100], ms, ErrBadTable},
		{"owner out of range", append(slices.Clone(good[1:]), 3), ms, ErrBadTable},
		{"no members", good, nil, ErrNoMembers},
		{"duplicate", good, []Member{{Name: "a"}, {Name: "a"}}, ErrDuplicateName},
	} {
		if _, err := FromOwners(DefaultConfig(), c.ms, c.owners, 1); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := FromOwners(DefaultConfig(), ms, good, 1); err != nil {
		t.Errorf("a table where one member owns everything is valid: %v", err)
	}
}

func FuzzFromOwners(f *testing.F) {
	f.Add(uint8(3), []byte{0, 1, 2, 3})
	f.Add(uint8(1), []byte{})
	f.Fuzz(func(t *testing.T, n uint8, table []byte) {
		owners := make([]uint32, MinPartitionCount)
		for p := range owners {
			if p < len(table) {
				owners[p] = uint32(table[p])
			}
		}
		r, err := FromOwners(Config{PartitionCount: MinPartitionCount}, members(int(n)), owners, 1)
		if err != nil {
			return
		}
		for p := range r.PartitionCount() {
			if !r.Has(r.PartitionOwner(p).Name) {
				t.Fatalf("partition %d owned by a stranger", p)
			}
		}
	})
}

func benchmarkOwner(b *testing.B, n int) {
	r := mustNew(b, DefaultConfig(), members(n))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = Key("users", strconv.Itoa(i))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = r.Owner(keys[i&1023])
	}
}

func BenchmarkOwner3(b *testing.B)   { benchmarkOwner(b, 3) }
func BenchmarkOwner16(b *testing.B)  { benchmarkOwner(b, 16) }
func BenchmarkOwner128(b *testing.B) { benchmarkOwner(b, 128) }

func BenchmarkNew16(b *testing.B)  { benchmarkNew(b, 16) }
func BenchmarkNew100(b *testing.B) { benchmarkNew(b, 100) }

func benchmarkNew(b *testing.B, n int) {
	ms := members(n)
	for b.Loop() {
		if _, err := New(DefaultConfig(), ms, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSlotRanges10(b *testing.B) {
	r := mustNew(b, DefaultConfig(), members(10))
	for b.Loop() {
		sink += len(r.SlotRanges())
	}
}

func reversed(ms []Member) []Member {
	out := slices.Clone(ms)
	slices.Reverse(out)
	return out
}
