package strategy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// fakeDB is a versioned in-memory database: the seam fake for writes.
type fakeDB struct {
	mu     sync.Mutex
	rows   map[string]row
	writes int                          // row writes applied
	calls  int                          // Write calls
	fail   func(w strategy.Write) error // per-write failure injection
}

type row struct {
	value   []byte
	deleted bool
	version uint64
}

func newFakeDB() *fakeDB { return &fakeDB{rows: map[string]row{}} }

func (db *fakeDB) Write(_ context.Context, ws []strategy.Write) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.calls++
	for _, w := range ws { // all or nothing
		if db.fail != nil {
			if err := db.fail(w); err != nil {
				return err
			}
		}
	}
	var stale []strategy.StaleWrite
	for i, w := range ws {
		if old, ok := db.rows[w.Key]; ok && old.version >= w.Version {
			if old.version > w.Version || old.deleted != w.Delete || string(old.value) != string(w.Value) {
				stale = append(stale, strategy.StaleWrite{Index: i, Version: w.Version, Stored: old.version})
			}
			continue
		}
		db.rows[w.Key] = row{value: w.Value, deleted: w.Delete, version: w.Version}
		db.writes++
	}
	if stale != nil {
		return &strategy.StaleVersionError{Namespace: "fake", Writes: stale}
	}
	return nil
}

// put stores a row as another writer would.
func (db *fakeDB) put(key string, r row) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.rows[key] = r
}

func (db *fakeDB) Load(_ context.Context, key string) ([]byte, bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	r, ok := db.rows[key]
	if !ok || r.deleted {
		return nil, false, nil
	}
	return r.value, true, nil
}

func (db *fakeDB) get(key string) (row, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	r, ok := db.rows[key]
	return r, ok
}

type writeEnv struct {
	ns      *strategy.Namespace
	store   *store.Store
	db      *fakeDB
	journal *journal.Journal
	clock   *testclock.Clock
}

func newWriteEnv(t testing.TB, p strategy.Policy, jopts journal.Options) writeEnv {
	t.Helper()
	clk := testclock.New()
	st, err := store.New(store.Config{MaxBytes: 64 << 20, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e := writeEnv{store: st, db: newFakeDB(), clock: clk}
	deps := strategy.Deps{Store: st, Writer: e.db}
	if p.Read == strategy.ReadThrough {
		deps.Loader = e.db
	}
	if p.Write == strategy.WriteBehind {
		j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), jopts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		e.journal, deps.Journal = j, j.AsQueue()
	}
	if p.Name == "" {
		p.Name = "users"
	}
	if e.ns, err = newNamespace(t, p, deps); err != nil {
		t.Fatal(err)
	}
	return e
}

var bg = context.Background()

func TestWriteThrough_DatabaseFirstThenCache(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	if r, ok := e.db.get("k"); !ok || string(r.value) != "v1" {
		t.Fatalf("database row = %+v, %v", r, ok)
	}
	if v, found := mustGet(t, e.ns, "k"); !found || string(v) != "v1" {
		t.Fatalf("Get = %q, %v", v, found)
	}
	if e.ns.Stats().Loads != 0 {
		t.Fatal("Get after a write-through Set went to the database")
	}
	if err := e.ns.Delete(bg, "k"); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.db.get("k"); !r.deleted {
		t.Fatal("Delete did not reach the database")
	}
	if _, found := mustGet(t, e.ns, "k"); found {
		t.Fatal("key found after a write-through Delete")
	}
}

func TestWriteThrough_DatabaseErrorFailsAndLeavesNoEntry(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("v1"), 0); err != nil {
		t.Fatal(err)
	}
	down := errors.New("connection refused")
	e.db.fail = func(strategy.Write) error { return down }
	err := e.ns.Set(bg, "k", []byte("v2"), 0)
	if !errors.Is(err, strategy.ErrBackend) || !errors.Is(err, down) {
		t.Fatalf("err = %v, want ErrBackend wrapping the cause", err)
	}
	if _, ok := e.store.Get(strategy.StoreKey("users", "k")); ok {
		t.Fatal("a failed write-through left an entry in the cache")
	}
	e.db.fail = nil
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "v1" {
		t.Fatalf("Get = %q, want the database's v1", v)
	}
	rejected := fmt.Errorf("%w: check constraint", strategy.ErrRejected)
	e.db.fail = func(strategy.Write) error { return rejected }
	if err := e.ns.Set(bg, "k", []byte("bad"), 0); !errors.Is(err, strategy.ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
	if s := e.ns.Stats(); s.WriteErrors != 2 {
		t.Fatalf("write errors = %d, want 2", s.WriteErrors)
	}
}

// Concurrent Sets of one key: a Set may fail with ErrStaleVersion when its
// retry past the stored version loses to another writer again (writeThrough
// says so; nothing is acknowledged that did not land), but whatever won is
// what both the cache and the database hold.
func TestWriteThrough_ConcurrentSetsLeaveTheNewestInCacheAndDatabase(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour}, journal.Options{})
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			err := e.ns.Set(bg, "k", fmt.Appendf(nil, "v%d", i), 0)
			switch {
			case err == nil:
				acked.Add(1)
			case !errors.Is(err, strategy.ErrStaleVersion):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if acked.Load() == 0 {
		t.Fatal("no Set of 50 was acknowledged")
	}
	r, _ := e.db.get("k")
	v, _ := mustGet(t, e.ns, "k")
	if string(v) != string(r.value) {
		t.Fatalf("cache holds %q, database %q (version %d)", v, r.value, r.version)
	}
}

func TestWriteBehind_AcknowledgedSetIsInTheJournalAndServed(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	e.db.rows["k"] = row{value: []byte("old"), version: 1}
	if err := e.ns.Set(bg, "k", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := e.journal.Pending("users", "k")
	if err != nil || !ok || string(rec.Value) != "new" {
		t.Fatalf("journal pending = %+v, %v, %v", rec, ok, err)
	}
	if r, _ := e.db.get("k"); string(r.value) != "old" {
		t.Fatal("write-behind wrote the database synchronously")
	}
	// Evicted from memory, the pending write still wins over the database.
	e.store.Delete(strategy.StoreKey("users", "k"))
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "new" {
		t.Fatalf("Get after eviction = %q, want the pending %q", v, "new")
	}
	if s := e.ns.Stats(); s.PendingHits != 1 || s.Loads != 0 {
		t.Fatalf("pending hits %d, loads %d; want 1 and 0", s.PendingHits, s.Loads)
	}
	// A pending delete hides the database row too.
	if err := e.ns.Delete(bg, "k"); err != nil {
		t.Fatal(err)
	}
	e.store.Delete(strategy.StoreKey("users", "k"))
	if _, found := mustGet(t, e.ns, "k"); found {
		t.Fatal("key found although a delete is pending")
	}
}

func TestWriteBehind_FullJournalIsBackpressureAndLosesNothing(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{MaxPending: 2})
	for _, k := range []string{"a", "b"} {
		if err := e.ns.Set(bg, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	err := e.ns.Set(bg, "c", []byte("v"), 0)
	if !errors.Is(err, strategy.ErrBackpressure) || !errors.Is(err, journal.ErrFull) {
		t.Fatalf("err = %v, want ErrBackpressure wrapping journal.ErrFull", err)
	}
	if _, found := mustGet(t, e.ns, "c"); found {
		t.Fatal("a refused write is visible")
	}
	// Rewriting a pending key needs no new room.
	if err := e.ns.Set(bg, "a", []byte("v2"), 0); err != nil {
		t.Fatalf("rewrite of a pending key at the bound: %v", err)
	}
	if e.ns.Stats().Backpressure != 1 {
		t.Fatalf("backpressure = %d", e.ns.Stats().Backpressure)
	}
}

func newFlusher(e writeEnv, mutate func(*journal.FlusherConfig)) *journal.Flusher {
	cfg := journal.FlusherConfig{
		Writers:   map[string]strategy.Writer{"users": e.db},
		BatchSize: 50, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return journal.NewFlusher(e.journal, cfg)
}

func pending(t *testing.T, j *journal.Journal) int {
	t.Helper()
	s, err := j.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s.Pending
}

func TestFlusher_CoalescesPerKey(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	const sets, keys = 1000, 10
	for i := range sets {
		if err := e.ns.Set(bg, fmt.Sprintf("k%d", i%keys), fmt.Appendf(nil, "v%d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	f := newFlusher(e, nil)
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d Sets over %d keys: %d row writes in %d database calls", sets, keys, e.db.writes, e.db.calls)
	if e.db.writes != keys {
		t.Fatalf("%d row writes, want %d (one per key)", e.db.writes, keys)
	}
	for k := range keys {
		r, _ := e.db.get(fmt.Sprintf("k%d", k))
		if want := fmt.Sprintf("v%d", sets-keys+k); string(r.value) != want {
			t.Fatalf("k%d = %q, want the last write %q", k, r.value, want)
		}
	}
	if n := pending(t, e.journal); n != 0 {
		t.Fatalf("%d records still pending", n)
	}
}

func TestFlusher_PoisonRecordIsBuriedOthersFlow(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	for _, k := range []string{"a", "poison", "b", "c"} {
		if err := e.ns.Set(bg, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	e.db.fail = func(w strategy.Write) error {
		if w.Key == "poison" {
			return fmt.Errorf("%w: value violates check constraint", strategy.ErrRejected)
		}
		return nil
	}
	f := newFlusher(e, func(c *journal.FlusherConfig) { c.MaxAttempts = 3 })
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := e.db.get(k); !ok {
			t.Fatalf("%s not written: the poison record blocked it", k)
		}
	}
	dead, err := e.journal.DeadLetters(10)
	if err != nil || len(dead) != 1 || dead[0].Key != "poison" || dead[0].Attempts < 2 {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
	if f.Stats().Buried != 1 || pending(t, e.journal) != 0 {
		t.Fatalf("buried %d, pending %d", f.Stats().Buried, pending(t, e.journal))
	}
	// Fixed upstream, the operator retries it.
	e.db.fail = nil
	if err := e.journal.Revive("users", "poison"); err != nil {
		t.Fatal(err)
	}
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.db.get("poison"); !ok {
		t.Fatal("revived record not written")
	}
}

func TestFlusher_DatabaseDownRetriesWithBackoffAndLosesNothing(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	for i := range 20 {
		if err := e.ns.Set(bg, fmt.Sprint(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	var failures atomic.Int32
	e.db.fail = func(strategy.Write) error {
		if failures.Load() < 5 {
			failures.Add(1)
			return errors.New("connection refused")
		}
		return nil
	}
	f := newFlusher(e, nil)
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if e.db.writes != 20 || pending(t, e.journal) != 0 {
		t.Fatalf("%d rows written, %d pending", e.db.writes, pending(t, e.journal))
	}
	if dead, _ := e.journal.DeadLetters(10); len(dead) != 0 {
		t.Fatalf("an outage buried records: %+v", dead)
	}
	// A deadline that the outage outlasts: Flush reports it, nothing is lost.
	if err := e.ns.Set(bg, "late", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	e.db.fail = func(strategy.Write) error { return errors.New("connection refused") }
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	if err := f.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded with the database down")
	}
	if pending(t, e.journal) != 1 {
		t.Fatal("the pending record was lost")
	}
}

func TestFlusher_RunFlushesInTheBackground(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	f := newFlusher(e, func(c *journal.FlusherConfig) { c.Interval = 5 * time.Millisecond })
	ctx, cancel := context.WithCancel(bg)
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := e.ns.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the background flush", func() bool { _, ok := e.db.get("k"); return ok && pending(t, e.journal) == 0 })
}

func TestRefreshAhead_HotEntryReloadsOnceInTheBackground(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, TTL: 100 * time.Second, RefreshAhead: 0.8}, journal.Options{})
	e.db.rows["k"] = row{value: []byte("v1"), version: 1}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "v1" {
		t.Fatal(string(v))
	}
	e.clock.Advance(50 * time.Second) // before 80% of the TTL: no refresh
	mustGet(t, e.ns, "k")
	if n := e.ns.Stats().Refreshes; n != 0 {
		t.Fatalf("%d refreshes at 50%% of the TTL", n)
	}
	e.db.rows["k"] = row{value: []byte("v2"), version: 2}
	e.clock.Advance(35 * time.Second) // 85 s: past 80%
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if v, _ := mustGet(t, e.ns, "k"); string(v) != "v1" && string(v) != "v2" {
				t.Errorf("Get = %q", v)
			}
		})
	}
	wg.Wait()
	waitFor(t, "the refreshed value", func() bool { v, _ := mustGet(t, e.ns, "k"); return string(v) == "v2" })
	if s := e.ns.Stats(); s.Refreshes < 1 || s.Loads > 1+s.Refreshes || s.Misses != 1 {
		t.Fatalf("stats %+v: want one miss and background refreshes only", s)
	}
	// The refreshed entry lives a full TTL from its reload: still there at 85+90 s.
	e.clock.Advance(90 * time.Second)
	if _, ok := e.store.Get(strategy.StoreKey("users", "k")); !ok {
		t.Fatal("refreshed entry expired with the old TTL")
	}
}

func TestRefreshAhead_ColdEntryJustExpires(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, TTL: 100 * time.Second, RefreshAhead: 0.8}, journal.Options{})
	e.db.rows["k"] = row{value: []byte("v1"), version: 1}
	mustGet(t, e.ns, "k")
	e.clock.Advance(101 * time.Second)
	if _, ok := e.store.Get(strategy.StoreKey("users", "k")); ok {
		t.Fatal("unread entry outlived its TTL")
	}
	if n := e.ns.Stats().Refreshes; n != 0 {
		t.Fatalf("%d refreshes of an entry nobody read", n)
	}
}

func TestFlusher_OneDownDatabaseDoesNotHoldBackOtherNamespaces(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Name: "a", Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	other := newFakeDB()
	b, err := newNamespace(t, strategy.Policy{Name: "b", Write: strategy.WriteBehind, TTL: time.Hour},
		strategy.Deps{Store: e.store, Writer: other, Journal: e.journal.AsQueue()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // a's records come first in the journal
		if err := e.ns.Set(bg, fmt.Sprint(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if err := b.Set(bg, fmt.Sprint(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	e.db.fail = func(strategy.Write) error { return errors.New("connection refused") }
	f := journal.NewFlusher(e.journal, journal.FlusherConfig{BatchSize: 100,
		Writers: map[string]strategy.Writer{"a": e.db, "b": other}, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	if err := f.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded with a's database down")
	}
	if other.writes != 10 {
		t.Fatalf("b's database got %d rows while a's was down, want 10", other.writes)
	}
	if n := pending(t, e.journal); n != 10 {
		t.Fatalf("%d pending, want a's 10", n)
	}
}

// A journal value the flusher cannot open (a sealed value whose key is
// gone) is a dead letter with the reason; the rest of the batch reaches
// the database opened, never as stored.
func TestFlusher_UnopenableRecordIsADeadLetterAndTheBatchGoesOn(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	for _, k := range []string{"a", "b", "c"} {
		if err := e.ns.Set(bg, k, []byte("sealed:"+k), 0); err != nil {
			t.Fatal(err)
		}
	}
	f := newFlusher(e, func(c *journal.FlusherConfig) {
		c.Open = func(r journal.Record) ([]byte, error) {
			if r.Key == "b" {
				return nil, errors.New("no key opens it")
			}
			return bytes.TrimPrefix(r.Value, []byte("sealed:")), nil
		}
	})
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "c"} {
		if got := string(e.db.rows[k].value); got != k {
			t.Fatalf("database row %q = %q, want the opened %q", k, got, k)
		}
	}
	if _, ok := e.db.rows["b"]; ok {
		t.Fatal("the unopenable record reached the database")
	}
	dead, err := e.journal.DeadLetters(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Key != "b" || !strings.Contains(dead[0].LastError, "no key opens it") {
		t.Fatalf("dead letters = %+v, want b with the reason", dead)
	}
	if n := pending(t, e.journal); n != 0 {
		t.Fatalf("%d pending after the flush", n)
	}
}
