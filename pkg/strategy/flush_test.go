package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func mustFlush(t *testing.T, ns *strategy.Namespace, prefix string) strategy.FlushResult {
	t.Helper()
	r, err := ns.Flush(prefix)
	if err != nil {
		t.Fatalf("Flush(%q): %v", prefix, err)
	}
	return r
}

func TestFlush_HidesEveryEntryAndTheNextReadLoadsAgain(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, TTL: time.Hour}, journal.Options{})
	for _, k := range []string{"a", "b"} {
		e.db.rows[k] = row{value: []byte("old-" + k)}
		mustGet(t, e.ns, k)
	}
	for _, k := range []string{"a", "b"} {
		e.db.rows[k] = row{value: []byte("new-" + k)} // changed behind the cache's back
	}
	if r := mustFlush(t, e.ns, ""); r.Epoch != 1 || r.PrefixTombstones != 0 {
		t.Fatalf("Flush = %+v", r)
	}
	for _, k := range []string{"a", "b"} {
		if v, _ := mustGet(t, e.ns, k); string(v) != "new-"+k {
			t.Fatalf("Get(%s) after the flush = %q, want the database's new value", k, v)
		}
	}
	if s := e.ns.Stats(); s.Loads != 4 || s.Misses != 4 || s.Flushes != 1 {
		t.Fatalf("stats %+v: want 4 loads, 4 misses, 1 flush", s)
	}
	mustGet(t, e.ns, "a") // the reloaded entry is visible
	if s := e.ns.Stats(); s.Loads != 4 {
		t.Fatalf("%d loads: the entry loaded after the flush was not served", s.Loads)
	}
}

func TestFlush_PrefixHidesOnlyTheKeysUnderIt(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil) // cache-aside: a hidden key reads not-found
	for _, k := range []string{"user:1", "user:2", "users", "order:1"} {
		if err := e.ns.Set(bg, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, e.ns, "user:")
	for k, want := range map[string]bool{"user:1": false, "user:2": false, "users": true, "order:1": true} {
		if _, found := mustGet(t, e.ns, k); found != want {
			t.Errorf("Get(%s) after flushing user: found = %v, want %v", k, found, want)
		}
	}
	// Written after the flush: visible, though under the prefix.
	if err := e.ns.Set(bg, "user:1", []byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	if v, found := mustGet(t, e.ns, "user:1"); !found || string(v) != "again" {
		t.Fatalf("Get after a Set that followed the flush = %q, %v", v, found)
	}
}

// A flush hides what is cached, never a write-behind write still on its way
// to the database: the miss reads it from the journal.
func TestFlush_PendingWriteBehindWritesStillReadBack(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	e.db.rows["k"] = row{value: []byte("old"), version: 1}
	e.db.rows["gone"] = row{value: []byte("old"), version: 1}
	if err := e.ns.Set(bg, "k", []byte("pending"), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.ns.Delete(bg, "gone"); err != nil {
		t.Fatal(err)
	}
	mustFlush(t, e.ns, "")
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "pending" {
		t.Fatalf("Get after the flush = %q, want the pending write", v)
	}
	if _, found := mustGet(t, e.ns, "gone"); found {
		t.Fatal("a pending delete was undone by the flush")
	}
	if s := e.ns.Stats(); s.PendingHits != 2 || s.Loads != 0 {
		t.Fatalf("pending hits %d, loads %d; want 2 and 0", s.PendingHits, s.Loads)
	}
	if n := pending(t, e.journal); n != 2 {
		t.Fatalf("%d writes pending after the flush, want 2", n)
	}
}

// sequencedLoader answers its n-th call with replies[n], so a test chooses
// which of two concurrent loads gets which value.
type sequencedLoader struct {
	started chan int
	replies []chan string
	n       atomic.Int64
}

func (l *sequencedLoader) Load(context.Context, string) ([]byte, bool, error) {
	i := int(l.n.Add(1)) - 1
	l.started <- i
	return []byte(<-l.replies[i]), true, nil
}

// A load that began before the flush may read what the flush was meant to
// drop: callers arriving after the flush do not join it, and its result,
// though it comes back last, does not replace theirs.
func TestFlush_DetachesLoadsInFlight(t *testing.T) {
	l := &sequencedLoader{started: make(chan int, 2), replies: []chan string{make(chan string, 1), make(chan string, 1)}}
	e := newEnv(t, readThrough(), l)
	before := goGet(bg, e.ns, "k")
	recv(t, "the first load", l.started)
	mustFlush(t, e.ns, "")
	after := goGet(bg, e.ns, "k")
	recv(t, "a second load, not a join", l.started)
	l.replies[1] <- "new"
	if r := recv(t, "the Get after the flush", after); string(r.value) != "new" {
		t.Fatalf("Get after the flush = %q, %v", r.value, r.err)
	}
	l.replies[0] <- "old"
	if r := recv(t, "the Get before the flush", before); string(r.value) != "old" {
		t.Fatalf("Get before the flush = %q, %v", r.value, r.err)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "new" {
		t.Fatalf("cached %q: the load from before the flush replaced the newer one", v)
	}
}

func TestFlush_InvalidatesLeasesOutstanding(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	r, err := e.ns.Lease(bg, "k")
	if err != nil || r.Token == 0 {
		t.Fatalf("Lease = %+v, %v", r, err)
	}
	mustFlush(t, e.ns, "k")
	if err := e.ns.SetLeased(bg, "k", []byte("read before the flush"), 0, r.Token); !errors.Is(err, strategy.ErrLeaseInvalid) {
		t.Fatalf("SetLeased after a flush: %v, want ErrLeaseInvalid", err)
	}
}

// Past MaxPrefixTombstones the oldest tombstone folds into a flush of
// everything stamped before it: more is hidden than asked, never less.
func TestFlush_TombstonesAreBoundedAndFoldConservatively(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	set := func(k string) {
		if err := e.ns.Set(bg, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	found := func(k string) bool { _, f := mustGet(t, e.ns, k); return f }
	set("early")
	mustFlush(t, e.ns, "p0:")
	set("middle") // stamped after the first tombstone
	for i := 1; i < strategy.MaxPrefixTombstones; i++ {
		if r := mustFlush(t, e.ns, fmt.Sprintf("p%d:", i)); r.Folded || r.PrefixTombstones != i+1 {
			t.Fatalf("flush %d = %+v", i, r)
		}
	}
	if !found("early") || !found("middle") {
		t.Fatal("a prefix flush hid a key outside its prefix")
	}
	r := mustFlush(t, e.ns, "one-more:")
	if !r.Folded || r.PrefixTombstones != strategy.MaxPrefixTombstones {
		t.Fatalf("flush past the bound = %+v; want the oldest folded", r)
	}
	if found("early") {
		t.Error("an entry older than the folded tombstone is still visible")
	}
	if !found("middle") {
		t.Error("an entry newer than the folded tombstone was hidden")
	}
}

func TestFlush_RejectsAPrefixNoKeyCouldHave(t *testing.T) {
	e := newEnv(t, readThrough(), valueLoader()) // keys of at most 64 bytes
	for _, p := range []string{strings.Repeat("x", 65), "\xff"} {
		if _, err := e.ns.Flush(p); !errors.Is(err, strategy.ErrInvalidArgument) {
			t.Errorf("Flush(%q): %v, want ErrInvalidArgument", p, err)
		}
	}
	if s := e.ns.Stats(); s.Flushes != 0 {
		t.Fatalf("%d flushes counted for rejected prefixes", s.Flushes)
	}
}

// The guarantee under concurrency: a Get that starts after Flush returned
// never serves a value read from the database before the flush began.
// Readers race flushes that each follow a change of the database.
func TestFlush_NoReadAfterAFlushServesAnOlderValue(t *testing.T) {
	var dbGen atomic.Int64 // the database's value: its generation
	l := strategy.LoaderFunc(func(_ context.Context, key string) ([]byte, bool, error) {
		return []byte(strconv.FormatInt(dbGen.Load(), 10)), true, nil
	})
	e := newEnv(t, readThrough(), l)
	var flushed atomic.Int64 // the generation of the last completed flush
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Go(func() {
			key := "k" + strconv.Itoa(r%3)
			for {
				select {
				case <-stop:
					return
				default:
				}
				floor := flushed.Load()
				v, _ := mustGet(t, e.ns, key)
				if got, _ := strconv.ParseInt(string(v), 10, 64); got < floor {
					t.Errorf("Get(%s) = generation %d after the flush of generation %d", key, got, floor)
					return
				}
			}
		})
	}
	for range 300 {
		g := dbGen.Add(1)
		prefix := ""
		if g%2 == 0 {
			prefix = "k"
		}
		mustFlush(t, e.ns, prefix)
		flushed.Store(g)
	}
	close(stop)
	wg.Wait()
}

// Whatever the prefix and the key, a flush hides a cached key exactly when
// the key starts with the prefix (the empty prefix: every key), and
// refuses only prefixes no key could have.
func FuzzFlush_HidesExactlyTheKeysUnderThePrefix(f *testing.F) {
	for _, s := range [][2]string{{"user:", "user:1"}, {"user:", "users"}, {"", "k"}, {"\xff", "k"}, {"k", "k"}, {"ké", "ké!"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, key string) {
		e := newEnv(t, strategy.Policy{TTL: time.Hour, MaxKeyBytes: 64}, nil)
		if e.ns.ValidateKey(key) != nil {
			return
		}
		if err := e.ns.Set(bg, key, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ns.Flush(prefix); err != nil {
			if !errors.Is(err, strategy.ErrInvalidArgument) || (len(prefix) <= 64 && isUTF8(prefix)) {
				t.Fatalf("Flush(%q): %v", prefix, err)
			}
			return
		}
		if _, found := mustGet(t, e.ns, key); found == strings.HasPrefix(key, prefix) {
			t.Fatalf("after Flush(%q), key %q found = %v", prefix, key, found)
		}
	})
}

// Every operation sees a flushed key as missing, not only Get: a lock
// taken with SET NX would otherwise stay blocked until the flushed entry
// expired, and GETDEL or SET … GET would hand back the flushed value.
func TestFlush_EveryOperationSeesAFlushedKeyAsMissing(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil) // cache-aside
	for _, k := range []string{"ttl", "expire", "nx", "xx", "keepttl", "getdel", "getdel-mem"} {
		if err := e.ns.Set(bg, k, []byte("old"), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	mustFlush(t, e.ns, "")

	if _, found, err := e.ns.TTL(bg, "ttl"); err != nil || found {
		t.Errorf("TTL of a flushed key: found %v, %v; want missing", found, err)
	}
	if v, found, err := e.ns.Expire(bg, "expire", time.Minute); err != nil || found || v != nil {
		t.Errorf("Expire of a flushed key = %q, found %v, %v; want missing", v, found, err)
	}
	if old, found, err := e.ns.SetIf(bg, "nx", []byte("new"), 0, strategy.SetOptions{NX: true}); err != nil || found || old != nil {
		t.Errorf("SetIf NX on a flushed key = %q, found %v, %v; want it applied over a missing key", old, found, err)
	}
	if v, _ := mustGet(t, e.ns, "nx"); string(v) != "new" {
		t.Errorf("Get after SetIf NX on a flushed key = %q, want new", v)
	}
	if old, found, err := e.ns.SetIf(bg, "xx", []byte("new"), 0, strategy.SetOptions{XX: true}); err != nil || found || old != nil {
		t.Errorf("SetIf XX on a flushed key = %q, found %v, %v; want not applied, nothing before", old, found, err)
	}
	if _, found := mustGet(t, e.ns, "xx"); found {
		t.Errorf("SetIf XX on a flushed key applied")
	}
	if _, _, err := e.ns.SetIf(bg, "keepttl", []byte("new"), 0, strategy.SetOptions{KeepTTL: true}); err != nil {
		t.Fatal(err)
	}
	if ttl, found, err := e.ns.TTL(bg, "keepttl"); err != nil || !found || ttl <= 50*time.Minute {
		t.Errorf("TTL after SET KEEPTTL over a flushed key = %v, %v, %v; want the namespace's hour, not the flushed entry's", ttl, found, err)
	}
	for _, memoryOnly := range []bool{false, true} {
		k := map[bool]string{false: "getdel", true: "getdel-mem"}[memoryOnly]
		if v, found, err := e.ns.GetDel(bg, k, memoryOnly); err != nil || found || v != nil {
			t.Errorf("GetDel(memoryOnly %v) of a flushed key = %q, found %v, %v; want missing", memoryOnly, v, found, err)
		}
	}
}

// SweepFlushed frees what a flush hid, and nothing else: entries written
// after the flush, entries of keys outside a flushed prefix, and other
// namespaces' entries stay.
func TestFlush_TheSweepFreesOnlyWhatTheFlushHid(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	other, err := strategy.New(strategy.Policy{Name: "other", TTL: time.Hour}, strategy.Deps{Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	set := func(ns *strategy.Namespace, keys ...string) {
		t.Helper()
		for _, k := range keys {
			if err := ns.Set(bg, k, []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	set(e.ns, "user:1", "user:2", "order:1", "order:2")
	set(other, "user:1")
	mustFlush(t, e.ns, "user:")
	set(e.ns, "user:2") // written again after the flush: visible
	if n := strategy.SweepFlushed(bg, e.ns); n != 1 {
		t.Fatalf("the prefix sweep freed %d entries, want 1 (user:1)", n)
	}
	mustFlush(t, e.ns, "")
	set(e.ns, "order:3")
	if n := strategy.SweepFlushed(bg, e.ns); n != 3 {
		t.Fatalf("the full sweep freed %d entries, want 3 (user:2, order:1, order:2)", n)
	}
	if got := e.store.Stats().Entries; got != 2 {
		t.Fatalf("%d entries left in the store, want 2 (order:3, and other's user:1)", got)
	}
	if _, found := mustGet(t, e.ns, "order:3"); !found {
		t.Fatal("the entry written after the flush was swept")
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	mustFlush(t, e.ns, "")
	if n := strategy.SweepFlushed(ctx, e.ns); n != 0 {
		t.Fatalf("a sweep whose context ended freed %d entries", n)
	}
}

// BenchmarkSweepFlushed measures the background sweep after a whole flush,
// per entry swept (ns/op is per entry).
func BenchmarkSweepFlushed(b *testing.B) {
	const entries = 200_000
	e := newEnv(b, strategy.Policy{TTL: time.Hour, MaxValueBytes: 1 << 10}, nil)
	value := make([]byte, 100)
	keys := make([]string, entries)
	for i := range keys {
		keys[i] = "key:" + strconv.Itoa(i)
	}
	swept := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		for _, k := range keys {
			if err := e.ns.Set(bg, k, value, 0); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := e.ns.Flush(""); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		swept += strategy.SweepFlushed(bg, e.ns)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(swept, 1)), "ns/entry")
}
