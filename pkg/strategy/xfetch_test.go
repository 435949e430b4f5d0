package strategy_test

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// timedDB is a database whose loads take cost on the fake clock, and block
// while gate is set, so a test can hold a refresh in flight.
type timedDB struct {
	clock *testclock.Clock
	cost  time.Duration
	value atomic.Pointer[string]
	loads atomic.Int64
	gate  atomic.Pointer[chan struct{}]
}

func (db *timedDB) Load(context.Context, string) ([]byte, bool, error) {
	db.loads.Add(1)
	if g := db.gate.Load(); g != nil {
		<-*g
	}
	db.clock.Advance(db.cost)
	return []byte(*db.value.Load()), true, nil
}

func (db *timedDB) set(v string) { db.value.Store(&v) }

// newXFetchEnv is a read-through namespace on a fake clock that also times
// its loads.
func newXFetchEnv(t *testing.T, p strategy.Policy, cost time.Duration) (*strategy.Namespace, *timedDB, *testclock.Clock) {
	t.Helper()
	clk := testclock.New()
	st, err := store.New(store.Config{MaxBytes: 1 << 20, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	db := &timedDB{clock: clk, cost: cost}
	db.set("v1")
	if p.Name == "" {
		p.Name = "users"
	}
	p.Read = strategy.ReadThrough
	ns, err := newNamespace(t, p, strategy.Deps{Store: st, Loader: db, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return ns, db, clk
}

// Far from expiry (life ≫ Δβ) no read refreshes: the chance per read is
// e^(−life/Δβ).
func TestXFetch_FarFromExpiryNoReadRefreshes(t *testing.T) {
	ns, db, clk := newXFetchEnv(t, strategy.Policy{TTL: 100 * time.Second, XFetchBeta: 1}, time.Second)
	mustGet(t, ns, "k")
	clk.Advance(40 * time.Second) // cached at 1 s: 60 s left, 60 Δβ, beyond any draw
	for range 1000 {
		mustGet(t, ns, "k")
	}
	if s := ns.Stats(); s.Refreshes != 0 || db.loads.Load() != 1 {
		t.Fatalf("%d refreshes, %d loads far from expiry; want 0 and 1", s.Refreshes, db.loads.Load())
	}
}

// Just before expiry (life ≪ Δβ) the first reads refresh: once, in the
// background, while every reader keeps getting the old value; the new value
// then lives a whole TTL, and no read ever missed.
func TestXFetch_NearExpiryRefreshesOnceWithoutAMiss(t *testing.T) {
	ns, db, clk := newXFetchEnv(t, strategy.Policy{TTL: 100 * time.Second, XFetchBeta: 1}, time.Second)
	mustGet(t, ns, "k") // cached once loaded, 1 s on: Δ = 1 s
	gate := make(chan struct{})
	db.gate.Store(&gate)
	db.set("v2")
	clk.Advance(100*time.Second - 10*time.Millisecond) // 10 ms left: each read refreshes with p ≈ 0.99
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if v, _ := mustGet(t, ns, "k"); string(v) != "v1" {
				t.Errorf("Get during the refresh = %q, want the old v1", v)
			}
		})
	}
	wg.Wait()
	waitFor(t, "the refresh to start", func() bool { return db.loads.Load() == 2 })
	db.cost = 0 // the clock stands still: the old entry outlives the refresh
	db.gate.Store(nil)
	close(gate)
	waitFor(t, "the refreshed value", func() bool { v, _ := mustGet(t, ns, "k"); return string(v) == "v2" })
	s := ns.Stats()
	if s.Refreshes != 1 || s.XFetchRefreshes != 1 || s.Misses != 1 || db.loads.Load() != 2 {
		t.Fatalf("stats %+v, %d loads: want one refresh (XFetch), the first miss only, 2 loads", s, db.loads.Load())
	}
	clk.Advance(99 * time.Second) // the new entry lives a TTL from its reload
	if v, _ := mustGet(t, ns, "k"); string(v) != "v2" || ns.Stats().Misses != 1 {
		t.Fatalf("Get = %q with %d misses after the refresh; want a hit of v2", v, ns.Stats().Misses)
	}
}

// A key's Δ is its own: a slow key starts refreshing earlier than a fast
// one, at the same life left.
func TestXFetch_SlowKeyRefreshesEarlierThanFastKey(t *testing.T) {
	ns, db, clk := newXFetchEnv(t, strategy.Policy{TTL: time.Hour, XFetchBeta: 1}, 10*time.Second)
	mustGet(t, ns, "slow")
	db.cost = time.Millisecond
	mustGet(t, ns, "fast")
	// Slow was cached at 10 s, fast at 10.001 s. At 3605 s slow has 5 s
	// left (0.5 Δ), fast 5.001 s (5001 Δ).
	clk.Advance(time.Hour - 5*time.Second - time.Millisecond)
	for range 50 {
		mustGet(t, ns, "fast")
	}
	if n := ns.Stats().Refreshes; n != 0 {
		t.Fatalf("the fast key refreshed %d times with 5001 Δ to live", n)
	}
	for range 50 { // p = e^−0.5 ≈ 0.61 per read: no refresh in 50 reads has p < 1e−20
		mustGet(t, ns, "slow")
	}
	waitFor(t, "the slow key's refresh", func() bool { return ns.Stats().XFetchRefreshes == 1 })
}

// An entry that was written, not loaded, has no Δ of its own: XFetch uses
// the namespace's average load time.
func TestXFetch_WrittenEntryUsesTheNamespacesLoadTime(t *testing.T) {
	ns, db, clk := newXFetchEnv(t, strategy.Policy{TTL: 100 * time.Second, XFetchBeta: 1}, time.Second)
	mustGet(t, ns, "loaded") // the namespace learns Δ = 1 s
	if err := ns.Set(context.Background(), "written", []byte("w"), 0); err != nil {
		t.Fatal(err)
	}
	clk.Advance(100*time.Second - 100*time.Millisecond) // "written" has 0.1 Δ left: p ≈ 0.9 per read
	for range 50 {
		mustGet(t, ns, "written")
	}
	// The refresh is counted as it starts, before its load: wait for both.
	waitFor(t, "the written entry's refresh and its load", func() bool {
		return ns.Stats().XFetchRefreshes >= 1 && db.loads.Load() >= 2
	})
}

func TestXFetch_PolicyIsChecked(t *testing.T) {
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := valueLoader()
	for name, p := range map[string]strategy.Policy{
		"negative beta":             {Read: strategy.ReadThrough, XFetchBeta: -1},
		"NaN beta":                  {Read: strategy.ReadThrough, XFetchBeta: math.NaN()},
		"with refresh-ahead":        {Read: strategy.ReadThrough, XFetchBeta: 1, RefreshAhead: 0.8},
		"on a read-aside namespace": {XFetchBeta: 1},
	} {
		p.Name = "ns"
		if _, err := newNamespace(t, p, strategy.Deps{Store: st, Loader: l}); err == nil {
			t.Errorf("%s: New accepted the policy", name)
		}
	}
}
