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

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// countingLoader counts calls and delegates to fn.
type countingLoader struct {
	calls atomic.Int64
	fn    func(ctx context.Context, key string) ([]byte, bool, error)
}

func (l *countingLoader) Load(ctx context.Context, key string) ([]byte, bool, error) {
	l.calls.Add(1)
	return l.fn(ctx, key)
}

// valueLoader returns "value-of-<key>" for every key.
func valueLoader() *countingLoader {
	return &countingLoader{fn: func(_ context.Context, key string) ([]byte, bool, error) {
		return []byte("value-of-" + key), true, nil
	}}
}

// blockingLoad is a loader that reports each call on started and returns
// only when the test sends it a result.
type blockingLoad struct {
	started chan string
	results chan loadReply
}

type loadReply struct {
	value []byte
	found bool
	err   error
}

func newBlockingLoad() *blockingLoad {
	return &blockingLoad{started: make(chan string, 16), results: make(chan loadReply)}
}

func (b *blockingLoad) Load(ctx context.Context, key string) ([]byte, bool, error) {
	b.started <- key
	r := <-b.results
	return r.value, r.found, r.err
}

type env struct {
	ns    *strategy.Namespace
	clock *testclock.Clock
	store *store.Store
}

// newEnv builds a Namespace on a fresh store with a fake clock and checks,
// once the test is done, that no caller is left counted as waiting.
func newEnv(t testing.TB, p strategy.Policy, l strategy.Loader) env {
	t.Helper()
	clk := testclock.New()
	st, err := store.New(store.Config{MaxBytes: 64 << 20, Clock: clk})
	if err != nil {
		t.Fatalf("store.New: %v", err)
	}
	if p.Name == "" {
		p.Name = "users"
	}
	ns, err := strategy.New(p, strategy.Deps{Store: st, Loader: l})
	if err != nil {
		t.Fatalf("strategy.New: %v", err)
	}
	t.Cleanup(func() {
		s := ns.Stats()
		if s.LoadsWaiting != 0 {
			t.Errorf("invariant: %d callers still counted as waiting after the test", s.LoadsWaiting)
		}
		if s.Loads+s.LoadsDeduped > s.Misses+s.Refreshes+s.Warms {
			t.Errorf("invariant: %d loads + %d deduped > %d misses", s.Loads, s.LoadsDeduped, s.Misses)
		}
		ns.Close()
		st.Close()
	})
	return env{ns: ns, clock: clk, store: st}
}

// newNamespace is strategy.New for a test: the namespace is closed at
// cleanup, so its background work ends with the test.
func newNamespace(t testing.TB, p strategy.Policy, d strategy.Deps) (*strategy.Namespace, error) {
	t.Helper()
	ns, err := strategy.New(p, d)
	if err == nil {
		t.Cleanup(ns.Close)
	}
	return ns, err
}

func readThrough() strategy.Policy {
	return strategy.Policy{Read: strategy.ReadThrough, TTL: time.Hour, MaxKeyBytes: 64, MaxValueBytes: 1024}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recv returns the next value from ch, failing the test if none comes in time.
func recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

type getResult struct {
	value []byte
	found bool
	err   error
}

func goGet(ctx context.Context, ns *strategy.Namespace, key string) <-chan getResult {
	ch := make(chan getResult, 1)
	go func() {
		v, f, err := ns.Get(ctx, key)
		ch <- getResult{v, f, err}
	}()
	return ch
}

func mustGet(t testing.TB, ns *strategy.Namespace, key string) ([]byte, bool) {
	t.Helper()
	v, found, err := ns.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, found
}

func TestNamespace_ConcurrentMissesLoadOnce(t *testing.T) {
	const callers = 300
	release := make(chan struct{})
	l := &countingLoader{fn: func(_ context.Context, key string) ([]byte, bool, error) {
		<-release
		return []byte("v:" + key), true, nil
	}}
	e := newEnv(t, readThrough(), l)

	results := make(chan getResult, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			v, f, err := e.ns.Get(context.Background(), "hot")
			results <- getResult{v, f, err}
		})
	}
	waitFor(t, "300 callers waiting on the load", func() bool { return e.ns.Stats().LoadsWaiting == callers })
	close(release)
	wg.Wait()
	close(results)

	for r := range results {
		if r.err != nil || !r.found || string(r.value) != "v:hot" {
			t.Fatalf("a caller got %q, %v, %v; want v:hot", r.value, r.found, r.err)
		}
	}
	if got := l.calls.Load(); got != 1 {
		t.Errorf("loader called %d times, want 1", got)
	}
	s := e.ns.Stats()
	if s.Loads != 1 || s.LoadsDeduped != callers-1 || s.Misses != callers || s.LoadsWaiting != 0 {
		t.Errorf("Stats = %+v; want Loads 1, LoadsDeduped %d, Misses %d, LoadsWaiting 0", s, callers-1, callers)
	}
	// The value is cached: the next Get is a hit.
	if v, _ := mustGet(t, e.ns, "hot"); string(v) != "v:hot" || l.calls.Load() != 1 {
		t.Errorf("Get after load = %q with %d loads; want a cached v:hot", v, l.calls.Load())
	}
}

func TestNamespace_DistinctKeysLoadSeparately(t *testing.T) {
	l := valueLoader()
	e := newEnv(t, readThrough(), l)
	for _, k := range []string{"a", "b", "c"} {
		if v, found := mustGet(t, e.ns, k); !found || string(v) != "value-of-"+k {
			t.Fatalf("Get(%s) = %q, %v", k, v, found)
		}
	}
	if got := l.calls.Load(); got != 3 {
		t.Fatalf("loader called %d times for 3 keys, want 3", got)
	}
	if s := e.ns.Stats(); s.LoadsDeduped != 0 {
		t.Fatalf("LoadsDeduped = %d for sequential loads, want 0", s.LoadsDeduped)
	}
}

func TestNamespace_CancelledCallerReturnsWhileSharedLoadContinues(t *testing.T) {
	loadCtxErr := make(chan error, 1)
	release := make(chan struct{})
	started := make(chan struct{})
	l := &countingLoader{fn: func(ctx context.Context, key string) ([]byte, bool, error) {
		close(started)
		<-release
		loadCtxErr <- ctx.Err()
		return []byte("loaded"), true, nil
	}}
	e := newEnv(t, readThrough(), l)

	ctx, cancel := context.WithCancel(context.Background())
	first := goGet(ctx, e.ns, "k") // leads the load
	recv(t, "the load to start", started)
	second := goGet(context.Background(), e.ns, "k")
	waitFor(t, "two callers waiting", func() bool { return e.ns.Stats().LoadsWaiting == 2 })

	cancel()
	r := recv(t, "the cancelled caller to return", first)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled caller got %q, %v, %v; want context.Canceled", r.value, r.found, r.err)
	}
	if got := e.ns.Stats().LoadsWaiting; got != 1 {
		t.Fatalf("LoadsWaiting = %d after one caller gave up, want 1", got)
	}

	close(release)
	if err := recv(t, "the load to finish", loadCtxErr); err != nil {
		t.Errorf("the shared load's context ended with its first caller: %v", err)
	}
	r = recv(t, "the second caller", second)
	if r.err != nil || string(r.value) != "loaded" {
		t.Fatalf("second caller got %q, %v", r.value, r.err)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "loaded" {
		t.Fatalf("later Get = %q, want loaded", v)
	}
	if got := l.calls.Load(); got != 1 {
		t.Errorf("loader called %d times, want 1", got)
	}
}

func TestNamespace_LoadContextHasLoadTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	var remaining atomic.Int64
	l := &countingLoader{fn: func(ctx context.Context, _ string) ([]byte, bool, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return nil, false, errors.New("no deadline")
		}
		remaining.Store(int64(time.Until(d)))
		return []byte("v"), true, nil
	}}
	p := readThrough()
	p.LoadTimeout = timeout
	e := newEnv(t, p, l)
	if _, _, err := e.ns.Get(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if r := time.Duration(remaining.Load()); r <= 0 || r > timeout {
		t.Fatalf("load deadline %v away, want within (0, %v]", r, timeout)
	}
}

func TestNamespace_NotFoundIsCachedForNegativeTTL(t *testing.T) {
	var exists atomic.Bool
	l := &countingLoader{fn: func(_ context.Context, _ string) ([]byte, bool, error) {
		if exists.Load() {
			return []byte("created"), true, nil
		}
		return nil, false, nil
	}}
	p := readThrough()
	p.NegativeTTL = 30 * time.Second
	e := newEnv(t, p, l)

	if v, found := mustGet(t, e.ns, "ghost"); found || v != nil {
		t.Fatalf("first Get = %q, %v; want not found", v, found)
	}
	if _, found := mustGet(t, e.ns, "ghost"); found {
		t.Fatal("second Get found a missing key")
	}
	if got := l.calls.Load(); got != 1 {
		t.Fatalf("loader called %d times within NegativeTTL, want 1", got)
	}
	if s := e.ns.Stats(); s.NegativeHits != 1 {
		t.Fatalf("NegativeHits = %d, want 1", s.NegativeHits)
	}

	exists.Store(true) // the row appears in the database
	e.clock.Advance(29 * time.Second)
	if _, found := mustGet(t, e.ns, "ghost"); found || l.calls.Load() != 1 {
		t.Fatalf("before NegativeTTL ran out: found=%v, loads=%d; want the cached not-found", found, l.calls.Load())
	}
	e.clock.Advance(2 * time.Second)
	if v, found := mustGet(t, e.ns, "ghost"); !found || string(v) != "created" {
		t.Fatalf("Get after NegativeTTL = %q, %v; want created", v, found)
	}
	if got := l.calls.Load(); got != 2 {
		t.Fatalf("loader called %d times, want 2", got)
	}
	// The fresh value replaced the expired negative entry.
	if v, found := mustGet(t, e.ns, "ghost"); !found || string(v) != "created" || l.calls.Load() != 2 {
		t.Fatalf("Get after reload = %q, %v with %d loads; want cached created", v, found, l.calls.Load())
	}
	if s := e.ns.Stats(); s.NegativeHits != 2 {
		t.Fatalf("NegativeHits = %d, want 2", s.NegativeHits)
	}
}

func TestNamespace_ZeroNegativeTTLLoadsEveryTime(t *testing.T) {
	l := &countingLoader{fn: func(context.Context, string) ([]byte, bool, error) { return nil, false, nil }}
	e := newEnv(t, readThrough(), l) // NegativeTTL 0
	for i := 1; i <= 3; i++ {
		if _, found := mustGet(t, e.ns, "ghost"); found {
			t.Fatal("found a missing key")
		}
		if got := l.calls.Load(); got != int64(i) {
			t.Fatalf("after %d Gets the loader ran %d times; want every Get to load", i, got)
		}
	}
	if s := e.ns.Stats(); s.NegativeHits != 0 || s.Hits != 0 {
		t.Fatalf("Stats = %+v; want no hits", s)
	}
}

// expiredCount reports how many of keys a read-aside namespace no longer has.
func expiredCount(t *testing.T, ns *strategy.Namespace, keys []string) int {
	t.Helper()
	n := 0
	for _, k := range keys {
		if _, found := mustGet(t, ns, k); !found {
			n++
		}
	}
	return n
}

func TestNamespace_TTLJitterSpreadsExpiries(t *testing.T) {
	const ttl = 100 * time.Second
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name string
		set  func(ns *strategy.Namespace, key string) error
	}{
		{"namespace TTL", func(ns *strategy.Namespace, key string) error {
			return ns.Set(context.Background(), key, []byte("v"), 0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := strategy.Policy{Read: strategy.ReadAside, TTL: ttl, TTLJitter: 0.5}
			e := newEnv(t, p, nil)
			for _, k := range keys {
				if err := tc.set(e.ns, k); err != nil {
					t.Fatal(err)
				}
			}
			// Jitter shortens a TTL by less than half: none expires before 50s.
			e.clock.Advance(49 * time.Second)
			if n := expiredCount(t, e.ns, keys); n != 0 {
				t.Fatalf("%d of %d keys expired at 49s; jitter 0.5 keeps at least 50s", n, len(keys))
			}
			e.clock.Advance(26 * time.Second) // 75s
			n := expiredCount(t, e.ns, keys)
			if n == 0 || n == len(keys) {
				t.Fatalf("%d of %d keys expired at 75s; want some but not all", n, len(keys))
			}
			t.Logf("%d of %d keys expired at 75s", n, len(keys))
			e.clock.Advance(25*time.Second + time.Nanosecond) // just past 100s
			if n := expiredCount(t, e.ns, keys); n != len(keys) {
				t.Fatalf("%d of %d keys expired past the TTL; want all", n, len(keys))
			}
		})
	}
}

// A TTL the caller chose is kept exact: jitter only spreads the namespace's.
func TestNamespace_TTLOverrideIsNotJittered(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour, TTLJitter: 0.5}, nil)
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, k := range keys {
		if err := e.ns.Set(context.Background(), k, []byte("v"), 100*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(99 * time.Second)
	if n := expiredCount(t, e.ns, keys); n != 0 {
		t.Fatalf("%d keys expired before their exact TTL", n)
	}
	e.clock.Advance(time.Second + time.Nanosecond)
	if n := expiredCount(t, e.ns, keys); n != len(keys) {
		t.Fatalf("%d of %d keys expired at their TTL", n, len(keys))
	}
}

func TestNamespace_LoadedEntriesGetJitteredTTL(t *testing.T) {
	l := valueLoader()
	p := readThrough()
	p.TTL, p.TTLJitter = 100*time.Second, 0.5
	e := newEnv(t, p, l)
	const keys = 200
	for i := range keys {
		mustGet(t, e.ns, "k"+strconv.Itoa(i))
	}
	e.clock.Advance(75 * time.Second)
	before := l.calls.Load()
	for i := range keys {
		mustGet(t, e.ns, "k"+strconv.Itoa(i))
	}
	if reloaded := l.calls.Load() - before; reloaded == 0 || reloaded == keys {
		t.Fatalf("%d of %d loaded keys expired at 75s; want some but not all", reloaded, keys)
	}
}

func TestNamespace_NoJitterExpiresExactlyAtTTL(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: 100 * time.Second}, nil)
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		if err := e.ns.Set(context.Background(), k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(100*time.Second - time.Nanosecond)
	if n := expiredCount(t, e.ns, keys); n != 0 {
		t.Fatalf("%d keys expired before the TTL", n)
	}
	e.clock.Advance(time.Nanosecond)
	if n := expiredCount(t, e.ns, keys); n != len(keys) {
		t.Fatalf("%d of %d keys expired at the TTL", n, len(keys))
	}
}

func TestNamespace_SetDuringLoadWins(t *testing.T) {
	b := newBlockingLoad()
	e := newEnv(t, readThrough(), b)

	got := goGet(context.Background(), e.ns, "k")
	recv(t, "the load to start", b.started)
	if err := e.ns.Set(context.Background(), "k", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	b.results <- loadReply{value: []byte("old"), found: true}
	if r := recv(t, "the loading caller", got); r.err != nil || string(r.value) != "old" {
		t.Fatalf("loading caller got %q, %v; want the loaded old", r.value, r.err)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "new" {
		t.Fatalf("Get after Set during load = %q, want new", v)
	}
}

func TestNamespace_DeleteDuringLoadIsNotUndone(t *testing.T) {
	b := newBlockingLoad()
	e := newEnv(t, readThrough(), b)

	got := goGet(context.Background(), e.ns, "k")
	recv(t, "the load to start", b.started)
	if err := e.ns.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	b.results <- loadReply{value: []byte("v1"), found: true}
	if r := recv(t, "the loading caller", got); r.err != nil || string(r.value) != "v1" {
		t.Fatalf("loading caller got %q, %v; want v1", r.value, r.err)
	}

	// The result was not cached: the next Get loads again.
	next := goGet(context.Background(), e.ns, "k")
	recv(t, "a second load", b.started)
	b.results <- loadReply{value: []byte("v2"), found: true}
	if r := recv(t, "the second Get", next); r.err != nil || string(r.value) != "v2" {
		t.Fatalf("Get after Delete during load = %q, %v; want a reload giving v2", r.value, r.err)
	}
	if s := e.ns.Stats(); s.Loads != 2 || s.Deletes != 1 {
		t.Fatalf("Stats = %+v; want Loads 2, Deletes 1", s)
	}
}

// TestNamespace_DeleteRacingLoadEndLeavesNoValue races a Delete against the
// end of a load that began before it: however they interleave, the loaded
// value must not be cached once both are done.
func TestNamespace_DeleteRacingLoadEndLeavesNoValue(t *testing.T) {
	b := newBlockingLoad()
	e := newEnv(t, strategy.Policy{Read: strategy.ReadThrough}, b)
	for i := range 300 {
		key := "k" + strconv.Itoa(i)
		got := goGet(context.Background(), e.ns, key)
		recv(t, "the load to start", b.started)
		deleted := make(chan error, 1)
		go func() { deleted <- e.ns.Delete(context.Background(), key) }()
		b.results <- loadReply{value: []byte("stale"), found: true}
		if err := recv(t, "Delete", deleted); err != nil {
			t.Fatal(err)
		}
		recv(t, "the loading caller", got)
		if v, ok := e.store.Get("users\x00" + key); ok {
			t.Fatalf("iteration %d: %q cached after a Delete that followed the load's start", i, v.Value)
		}
	}
}

func TestNamespace_LoadErrorIsReturnedAndNotCached(t *testing.T) {
	boom := errors.New("connection refused")
	l := &countingLoader{fn: func(context.Context, string) ([]byte, bool, error) { return nil, false, boom }}
	p := readThrough()
	p.NegativeTTL = time.Minute // an error must not become a negative entry either
	e := newEnv(t, p, l)

	for i := 1; i <= 2; i++ {
		v, found, err := e.ns.Get(context.Background(), "secret-key")
		if !errors.Is(err, strategy.ErrBackend) {
			t.Fatalf("Get = %q, %v, %v; want ErrBackend", v, found, err)
		}
		// Which namespace and why, but never the key: error texts end up
		// in logs, and keys may be personal data.
		if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), `"users"`) || strings.Contains(err.Error(), "secret-key") {
			t.Errorf("error %q does not say which namespace failed and why, or quotes the key", err)
		}
		if got := l.calls.Load(); got != int64(i) {
			t.Fatalf("after %d Gets the loader ran %d times; a failed load must not be cached", i, got)
		}
	}
	if s := e.ns.Stats(); s.LoadErrors != 2 || s.Hits != 0 {
		t.Fatalf("Stats = %+v; want LoadErrors 2, Hits 0", s)
	}
}

func TestNamespace_ReadAsideMissDoesNotLoad(t *testing.T) {
	l := &countingLoader{fn: func(context.Context, string) ([]byte, bool, error) {
		return []byte("x"), true, nil
	}}
	e := newEnv(t, strategy.Policy{Read: strategy.ReadAside}, l)
	if v, found := mustGet(t, e.ns, "k"); found || v != nil {
		t.Fatalf("read-aside miss = %q, %v; want not found", v, found)
	}
	if got := l.calls.Load(); got != 0 {
		t.Fatalf("read-aside miss called the loader %d times", got)
	}
	if err := e.ns.Set(context.Background(), "k", []byte("set"), 0); err != nil {
		t.Fatal(err)
	}
	if v, found := mustGet(t, e.ns, "k"); !found || string(v) != "set" {
		t.Fatalf("Get after Set = %q, %v", v, found)
	}
	if s := e.ns.Stats(); s.Misses != 1 || s.Hits != 1 || s.Sets != 1 || s.Loads != 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestNamespace_NamespacesSharingAStoreDoNotCollide(t *testing.T) {
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	a, errA := newNamespace(t, strategy.Policy{Name: "a"}, strategy.Deps{Store: st})
	b, errB := newNamespace(t, strategy.Policy{Name: "b"}, strategy.Deps{Store: st})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if err := a.Set(context.Background(), "k", []byte("from a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := b.Get(context.Background(), "k"); found {
		t.Fatal("namespace b sees namespace a's key")
	}
	if err := b.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if v, found, _ := a.Get(context.Background(), "k"); !found || string(v) != "from a" {
		t.Fatalf("b.Delete removed a's key: %q, %v", v, found)
	}
}

func TestNew_ReadThroughWithoutLoaderFails(t *testing.T) {
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ns, err := newNamespace(t, strategy.Policy{Name: "users", Read: strategy.ReadThrough}, strategy.Deps{Store: st})
	if !errors.Is(err, strategy.ErrNoBackend) || ns != nil {
		t.Fatalf("New(read-through, nil loader) = %v, %v; want ErrNoBackend", ns, err)
	}
	if !strings.Contains(err.Error(), "users") {
		t.Errorf("error %q does not name the namespace", err)
	}
	if _, err := newNamespace(t, strategy.Policy{Name: "users", Read: strategy.ReadAside}, strategy.Deps{Store: st}); err != nil {
		t.Fatalf("New(read-aside, nil loader) = %v; want no error", err)
	}
}

func TestNamespace_InvalidInputIsRejected(t *testing.T) {
	l := valueLoader()
	p := readThrough()
	p.MaxKeyBytes, p.MaxValueBytes = 16, 32
	e := newEnv(t, p, l)
	ctx := context.Background()
	longKey := strings.Repeat("k", 17)
	badUTF8 := "ke\xffy"

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"Get empty key", func() error { _, _, err := e.ns.Get(ctx, ""); return err }, "key is empty"},
		{"Get long key", func() error { _, _, err := e.ns.Get(ctx, longKey); return err }, "key is 17 bytes"},
		{"Get invalid UTF-8", func() error { _, _, err := e.ns.Get(ctx, badUTF8); return err }, "not valid UTF-8"},
		{"Set empty key", func() error { return e.ns.Set(ctx, "", []byte("v"), 0) }, "key is empty"},
		{"Set long key", func() error { return e.ns.Set(ctx, longKey, []byte("v"), 0) }, "at most 16"},
		{"Set invalid UTF-8", func() error { return e.ns.Set(ctx, badUTF8, []byte("v"), 0) }, "not valid UTF-8"},
		{"Set large value", func() error { return e.ns.Set(ctx, "k", make([]byte, 33), 0) }, "value is 33 bytes"},
		{"Delete empty key", func() error { return e.ns.Delete(ctx, "") }, "key is empty"},
		{"Delete long key", func() error { return e.ns.Delete(ctx, longKey) }, "at most 16"},
		{"Delete invalid UTF-8", func() error { return e.ns.Delete(ctx, badUTF8) }, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, strategy.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
	if got := l.calls.Load(); got != 0 {
		t.Errorf("invalid requests called the loader %d times", got)
	}
	if s := e.ns.Stats(); s.Gets != 0 || s.Sets != 0 || s.Deletes != 0 {
		t.Errorf("invalid requests were counted as served: %+v", s)
	}
	if v, found := mustGet(t, e.ns, "k"); string(v) != "value-of-k" || !found {
		t.Errorf("a rejected Set left a value behind: %q", v)
	}

	// The limits are inclusive.
	atLimit := strings.Repeat("é", 8) // 16 bytes
	if err := e.ns.Set(ctx, atLimit, make([]byte, 32), 0); err != nil {
		t.Errorf("Set at the key and value limits: %v", err)
	}
}

func FuzzNamespace_ValidateKey(f *testing.F) {
	const maxKey = 16
	// ValidateKey reads only the policy. No store: its background clean-up
	// would add coverage noise that sends the fuzzer minimizing.
	ns, err := newNamespace(f, strategy.Policy{Name: "fuzz", MaxKeyBytes: maxKey}, strategy.Deps{Store: nil})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "k", "user:42", "ключ", "ke\xffy", "\x00", strings.Repeat("a", maxKey), strings.Repeat("a", maxKey+1), strings.Repeat("é", 8), "\xed\xa0\x80"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := ns.ValidateKey(key)
		valid := key != "" && len(key) <= maxKey && isUTF8(key)
		if err == nil && !valid {
			t.Fatalf("ValidateKey(%q) accepted a key that is empty, too long or not UTF-8", key)
		}
		if err != nil && valid {
			t.Fatalf("ValidateKey(%q) rejected a valid key: %v", key, err)
		}
		if err != nil && !errors.Is(err, strategy.ErrInvalidArgument) {
			t.Fatalf("ValidateKey(%q) = %v, not ErrInvalidArgument", key, err)
		}
	})
}

// isUTF8 is an oracle independent of utf8.ValidString: dropping invalid
// sequences leaves a valid string unchanged and shortens any other.
func isUTF8(s string) bool { return strings.ToValidUTF8(s, "") == s }

func BenchmarkNamespace_GetHit(b *testing.B) {
	e := newEnv(b, strategy.Policy{Read: strategy.ReadAside, TTL: time.Hour}, nil)
	const keys = 1 << 12
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("key-%d", i)
		if err := e.ns.Set(context.Background(), names[i], make([]byte, 128), 0); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	var misses atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, found, _ := e.ns.Get(ctx, names[i&(keys-1)]); !found {
				misses.Add(1)
			}
			i++
		}
	})
	if m := misses.Load(); m > 0 {
		b.Fatalf("%d misses on cached keys", m)
	}
}

func TestNamespace_PanickingLoaderIsAnErrorNotACrash(t *testing.T) {
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ns, err := newNamespace(t, strategy.Policy{Name: "p", Read: strategy.ReadThrough}, strategy.Deps{Store: st, Loader: strategy.LoaderFunc(func(context.Context, string) ([]byte, bool, error) {
		panic("driver bug")
	})})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ns.Get(context.Background(), "k")
	if !errors.Is(err, strategy.ErrBackend) || !strings.Contains(err.Error(), "driver bug") {
		t.Fatalf("err = %v, want strategy.ErrBackend naming the panic", err)
	}
	if ns.Stats().LoadErrors != 1 {
		t.Fatalf("load errors = %d", ns.Stats().LoadErrors)
	}
}

func TestNamespace_LoadErrorKeepsTheCause(t *testing.T) {
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ns, _ := newNamespace(t, strategy.Policy{Name: "p", Read: strategy.ReadThrough}, strategy.Deps{Store: st, Loader: strategy.LoaderFunc(func(context.Context, string) ([]byte, bool, error) {
		return nil, false, context.DeadlineExceeded
	})})
	_, _, err = ns.Get(context.Background(), "k")
	if !errors.Is(err, strategy.ErrBackend) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want both strategy.ErrBackend and the cause", err)
	}
}

// A Get that starts after an acknowledged Delete must not join a load that
// began before it: that load may have read the database before the write.
func TestNamespace_GetAfterDeleteDoesNotJoinOlderLoad(t *testing.T) {
	b := newBlockingLoad()
	e := newEnv(t, readThrough(), b)

	first := goGet(context.Background(), e.ns, "k")
	recv(t, "the first load to start", b.started)
	if err := e.ns.Delete(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	second := goGet(context.Background(), e.ns, "k")
	recv(t, "a second, separate load", b.started)
	// The second Get started a load of its own while the first is still
	// blocked: it did not join the older one.
	if n := e.ns.Stats().Loads; n != 2 {
		t.Fatalf("loads = %d, want 2", n)
	}
	b.results <- loadReply{value: []byte("x"), found: true}
	b.results <- loadReply{value: []byte("x"), found: true}
	for _, ch := range []<-chan getResult{first, second} {
		if r := recv(t, "a Get", ch); r.err != nil {
			t.Fatal(r.err)
		}
	}
}
