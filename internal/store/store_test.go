package store

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/testclock"
)

// newTestStore returns a Store on clk (the wall clock when nil) and checks
// the byte bound once the test is done.
func newTestStore(t testing.TB, maxBytes uint64, clk Clock) *Store {
	t.Helper()
	s, err := New(Config{MaxBytes: maxBytes, Clock: clk})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		s.c.CleanUp()
		if st := s.Stats(); st.Bytes > st.MaxBytes {
			t.Errorf("invariant: %d bytes cached, more than MaxBytes %d", st.Bytes, st.MaxBytes)
		}
		s.Close()
	})
	return s
}

func TestStore_EntryExpiresAfterItsTTL(t *testing.T) {
	clk := testclock.New()
	s := newTestStore(t, 1<<20, clk)
	s.Set("short", Entry{Value: []byte("v"), Found: true, TTL: 10 * time.Second})
	s.Set("long", Entry{Value: []byte("w"), Found: true, TTL: time.Minute})

	if e, ok := s.Get("short"); !ok || string(e.Value) != "v" || !e.Found {
		t.Fatalf("Get(short) before expiry = %+v, %v", e, ok)
	}
	clk.Advance(9 * time.Second)
	if _, ok := s.Get("short"); !ok {
		t.Fatal("short expired 1s before its TTL")
	}
	clk.Advance(2 * time.Second)
	if e, ok := s.Get("short"); ok {
		t.Fatalf("short still present 1s after its TTL: %+v", e)
	}
	if _, ok := s.Get("long"); !ok {
		t.Fatal("long (1m TTL) expired after 11s")
	}
	clk.Advance(time.Minute)
	if _, ok := s.Get("long"); ok {
		t.Fatal("long still present after its TTL")
	}
}

func TestStore_ReadDoesNotExtendTTL(t *testing.T) {
	clk := testclock.New()
	s := newTestStore(t, 1<<20, clk)
	s.Set("k", Entry{Value: []byte("v"), Found: true, TTL: 10 * time.Second})
	for range 9 {
		clk.Advance(time.Second)
		if _, ok := s.Get("k"); !ok {
			t.Fatal("k expired early")
		}
	}
	clk.Advance(2 * time.Second)
	if _, ok := s.Get("k"); ok {
		t.Fatal("reads extended k's lifetime past its TTL")
	}
}

func TestStore_SetResetsTTL(t *testing.T) {
	clk := testclock.New()
	s := newTestStore(t, 1<<20, clk)
	s.Set("k", Entry{Value: []byte("old"), Found: true, TTL: 10 * time.Second})
	clk.Advance(8 * time.Second)
	s.Set("k", Entry{Value: []byte("new"), Found: true, TTL: 10 * time.Second})
	clk.Advance(8 * time.Second)
	if e, ok := s.Get("k"); !ok || string(e.Value) != "new" {
		t.Fatalf("Get(k) 8s after the second Set = %+v, %v; want new", e, ok)
	}
	clk.Advance(3 * time.Second)
	if _, ok := s.Get("k"); ok {
		t.Fatal("k outlived the TTL of its last Set")
	}
}

func TestStore_NonPositiveTTLNeverExpires(t *testing.T) {
	clk := testclock.New()
	s := newTestStore(t, 1<<20, clk)
	s.Set("zero", Entry{Value: []byte("v"), Found: true})
	s.Set("negative", Entry{Value: []byte("v"), Found: true, TTL: -time.Second})
	clk.Advance(10 * 365 * 24 * time.Hour)
	for _, k := range []string{"zero", "negative"} {
		if _, ok := s.Get(k); !ok {
			t.Errorf("%s expired although its TTL means no expiry", k)
		}
	}
}

func TestStore_NegativeEntryIsCached(t *testing.T) {
	s := newTestStore(t, 1<<20, nil)
	s.Set("gone", Entry{Found: false, TTL: time.Minute})
	e, ok := s.Get("gone")
	if !ok || e.Found || e.Value != nil {
		t.Fatalf("Get(gone) = %+v, %v; want a present negative entry", e, ok)
	}
}

func TestStore_ByteBoundHoldsUnderOverflow(t *testing.T) {
	const maxBytes = 64 << 10
	s := newTestStore(t, maxBytes, nil)
	value := make([]byte, 100)
	perEntry := uint64(len("key-00000") + len(value) + EntryOverhead)
	n := int(20 * maxBytes / perEntry) // twenty times what fits
	for i := range n {
		s.Set(fmt.Sprintf("key-%05d", i), Entry{Value: value, Found: true, TTL: time.Hour})
	}

	deadline := time.Now().Add(10 * time.Second)
	var st Stats
	for {
		s.c.CleanUp() // runs pending maintenance (eviction) synchronously
		st = s.Stats()
		if st.Bytes <= maxBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d inserts: %+v; want Bytes ≤ %d and Evictions > 0", n, st, maxBytes)
		}
		time.Sleep(time.Millisecond)
	}
	if st.MaxBytes != maxBytes {
		t.Errorf("MaxBytes = %d, want %d", st.MaxBytes, maxBytes)
	}
	if st.Entries > maxBytes/perEntry {
		t.Errorf("%d entries cached; at most %d fit in %d bytes", st.Entries, maxBytes/perEntry, maxBytes)
	}
	// Evictions are counted as they happen, so once maintenance is done
	// every inserted key is either cached or counted.
	if want := uint64(n) - st.Entries; st.Evictions == 0 || st.Evictions != want {
		t.Errorf("Evictions = %d, want %d (inserted %d distinct keys, %d left)", st.Evictions, want, n, st.Entries)
	}
}

func TestStore_WeightCountsKeyValueAndOverhead(t *testing.T) {
	s := newTestStore(t, 1<<20, nil)
	s.Set("abc", Entry{Value: make([]byte, 1000), Found: true})
	s.c.CleanUp()
	if got, want := s.Stats().Bytes, uint64(8+1024+EntryOverhead); got != want { // size classes 8 and 1024
		t.Fatalf("Bytes = %d, want %d", got, want)
	}
}

func TestStore_SetIfAbsentDoesNotReplace(t *testing.T) {
	s := newTestStore(t, 1<<20, nil)
	if !s.SetIfAbsent("k", Entry{Value: []byte("first"), Found: true}) {
		t.Fatal("SetIfAbsent on an empty key did not store")
	}
	if s.SetIfAbsent("k", Entry{Value: []byte("second"), Found: true}) {
		t.Fatal("SetIfAbsent reported storing over a live entry")
	}
	if e, _ := s.Get("k"); string(e.Value) != "first" {
		t.Fatalf("Get(k) = %q, want first", e.Value)
	}
}

func TestStore_SetIfAbsentReplacesExpiredEntry(t *testing.T) {
	clk := testclock.New()
	s := newTestStore(t, 1<<20, clk)
	s.Set("k", Entry{Found: false, TTL: time.Second})
	clk.Advance(2 * time.Second)
	if !s.SetIfAbsent("k", Entry{Value: []byte("fresh"), Found: true, TTL: time.Minute}) {
		t.Fatal("SetIfAbsent did not store over an expired entry")
	}
	if e, ok := s.Get("k"); !ok || string(e.Value) != "fresh" {
		t.Fatalf("Get(k) = %+v, %v; want fresh", e, ok)
	}
}

func TestStore_DeleteRemoves(t *testing.T) {
	s := newTestStore(t, 1<<20, nil)
	s.Set("k", Entry{Value: []byte("v"), Found: true})
	s.Set("other", Entry{Value: []byte("w"), Found: true})
	s.Delete("k")
	if e, ok := s.Get("k"); ok {
		t.Fatalf("Get after Delete = %+v", e)
	}
	if _, ok := s.Get("other"); !ok {
		t.Fatal("Delete(k) removed another key")
	}
	s.Delete("never-set") // must not panic
	if !s.SetIfAbsent("k", Entry{Value: []byte("again"), Found: true}) {
		t.Fatal("SetIfAbsent after Delete did not store")
	}
}

func BenchmarkStore_GetParallel(b *testing.B) {
	s := newTestStore(b, 64<<20, nil)
	const keys = 1 << 14
	names := make([]string, keys)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
		s.Set(names[i], Entry{Value: make([]byte, 128), Found: true, TTL: time.Hour})
	}
	var misses atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := s.Get(names[i&(keys-1)]); !ok {
				misses.Add(1)
			}
			i++
		}
	})
	if m := misses.Load(); m > 0 {
		b.Fatalf("%d misses on keys that fit", m)
	}
}

func BenchmarkStore_Set(b *testing.B) {
	s := newTestStore(b, 64<<20, nil)
	const keys = 1 << 14
	names := make([]string, keys)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
	}
	value := make([]byte, 128)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Set(names[i&(keys-1)], Entry{Value: value, Found: true, TTL: time.Hour})
		i++
	}
}

func TestStore_SetIfNewerKeepsTheHighestVersion(t *testing.T) {
	s, err := New(Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !s.SetIfNewer("k", Entry{Value: []byte("v2"), Found: true, Version: 2}) {
		t.Fatal("first write not stored")
	}
	if s.SetIfNewer("k", Entry{Value: []byte("v1"), Found: true, Version: 1}) {
		t.Fatal("older version replaced a newer one")
	}
	if e, _ := s.Get("k"); string(e.Value) != "v2" {
		t.Fatalf("got %q", e.Value)
	}
	if !s.SetIfNewer("k", Entry{Value: []byte("v3"), Found: true, Version: 3}) {
		t.Fatal("newer version not stored")
	}
	if e, life, ok := s.GetWithLife("k"); !ok || string(e.Value) != "v3" || life <= 0 {
		t.Fatalf("GetWithLife = %q, %v, %v", e.Value, life, ok)
	}
}
