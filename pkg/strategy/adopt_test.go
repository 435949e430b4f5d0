package strategy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// fakePrevious is a previous owner holding entries by key.
type fakePrevious struct {
	held  map[string]strategy.Entry
	calls atomic.Int64
}

func (f *fakePrevious) Open(_, key string) bool { _, ok := f.held[key]; return ok }

func (f *fakePrevious) Held(_ context.Context, _, key string, remote bool) (strategy.Entry, bool, bool) {
	f.calls.Add(1)
	e, ok := f.held[key]
	return e, false, ok && remote
}

func newAdoptEnv(t *testing.T, p strategy.Policy, prev strategy.Previous) (*strategy.Namespace, *store.Store, *countingLoader, *testclock.Clock) {
	t.Helper()
	clk := testclock.New()
	st, err := store.New(store.Config{MaxBytes: 64 << 20, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if p.Name == "" {
		p.Name = "users"
	}
	l := valueLoader()
	var loader strategy.Loader
	if p.Read == strategy.ReadThrough {
		loader = l
	}
	ns, err := newNamespace(t, p, strategy.Deps{Store: st, Loader: loader, Previous: prev, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return ns, st, l, clk
}

// An adopted entry keeps its value, version, kind and the life it had
// left; nothing is loaded for it.
func TestAdopt_KeepsKindVersionAndLifeLeft(t *testing.T) {
	ns, st, l, _ := newAdoptEnv(t, readThrough(), nil)
	ns.BeginAdopt()
	defer ns.EndAdopt()
	if !ns.Adopt("a", strategy.Entry{Value: []byte("held"), Found: true, Version: 7, TTL: 90 * time.Second}) {
		t.Fatal("Adopt of a key never touched here refused")
	}
	if !ns.Adopt("gone", strategy.Entry{TTL: 5 * time.Second}) {
		t.Fatal("Adopt of a negative entry refused")
	}
	e, life, ok := st.GetWithLife(strategy.StoreKey("users", "a"))
	if !ok || string(e.Value) != "held" || e.Version != 7 || life > 90*time.Second || life < 89*time.Second {
		t.Fatalf("adopted entry %+v life %s, want held v7 with 90 s left", e, life)
	}
	if v, found := mustGet(t, ns, "a"); !found || string(v) != "held" {
		t.Fatalf("Get a = %q %v, want held", v, found)
	}
	if _, found := mustGet(t, ns, "gone"); found {
		t.Fatal("a cached not-found came back found")
	}
	if n := l.calls.Load(); n != 0 {
		t.Fatalf("%d loads, want none", n)
	}
	if s := ns.Stats(); s.Adopted != 2 {
		t.Fatalf("Adopted = %d, want 2", s.Adopted)
	}
}

// A key written here after the change — even by a cache-aside Delete,
// which leaves no entry — is never overwritten by the previous owner's
// older entry, neither in bulk nor on a miss.
func TestAdopt_NeverOverwritesAWriteSinceTheChange(t *testing.T) {
	prev := &fakePrevious{held: map[string]strategy.Entry{
		"set": {Value: []byte("old"), Found: true}, "del": {Value: []byte("old"), Found: true},
	}}
	p := strategy.Policy{TTL: time.Hour} // cache-aside
	ns, _, _, _ := newAdoptEnv(t, p, prev)
	ns.BeginAdopt()
	defer ns.EndAdopt()
	if err := ns.Set(context.Background(), "set", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if err := ns.Delete(context.Background(), "del"); err != nil {
		t.Fatal(err)
	}
	for k := range prev.held {
		if ns.Adopt(k, prev.held[k]) {
			t.Errorf("Adopt(%s) stored the previous owner's entry over a write here", k)
		}
	}
	if v, _ := mustGet(t, ns, "set"); string(v) != "new" {
		t.Errorf("set = %q, want new", v)
	}
	if v, found := mustGet(t, ns, "del"); found {
		t.Errorf("deleted key came back as %q", v)
	}
}

// A flush here after the change hides adopted entries; without an
// adoption running, Adopt refuses.
func TestAdopt_FlushHidesAndNoAdoptionRefuses(t *testing.T) {
	ns, _, _, _ := newAdoptEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	if ns.Adopt("x", strategy.Entry{Value: []byte("v"), Found: true}) {
		t.Fatal("Adopt without BeginAdopt stored")
	}
	ns.BeginAdopt()
	defer ns.EndAdopt()
	if _, err := ns.Flush(""); err != nil {
		t.Fatal(err)
	}
	if ns.Adopt("x", strategy.Entry{Value: []byte("v"), Found: true}) {
		t.Fatal("Adopt after a flush here stored an entry the flush hides")
	}
	if _, found := mustGet(t, ns, "x"); found {
		t.Fatal("flushed entry served")
	}
}

// Concurrent misses of a moved key ask the previous owner once and the
// database never; the answer is cached with its life left.
func TestPrevious_MissAsksThePreviousOwnerBeforeTheDatabase(t *testing.T) {
	prev := &fakePrevious{held: map[string]strategy.Entry{"k": {Value: []byte("held"), Found: true, TTL: time.Minute}}}
	ns, st, l, _ := newAdoptEnv(t, readThrough(), prev)
	ns.BeginAdopt()
	defer ns.EndAdopt()
	var chans []<-chan getResult
	for range 50 {
		chans = append(chans, goGet(context.Background(), ns, "k"))
	}
	for _, ch := range chans {
		if r := recv(t, "a Get", ch); r.err != nil || string(r.value) != "held" {
			t.Fatalf("Get k = %q, %v; want held", r.value, r.err)
		}
	}
	if n := l.calls.Load(); n != 0 {
		t.Fatalf("%d database loads, want none", n)
	}
	if n := prev.calls.Load(); n < 1 || n > 50 {
		t.Fatalf("previous owner asked %d times", n)
	}
	if _, life, ok := st.GetWithLife(strategy.StoreKey("users", "k")); !ok || life > time.Minute {
		t.Fatalf("cached %v with life %s, want the minute it had left", ok, life)
	}
	// A key not held there loads from the database.
	if v, _ := mustGet(t, ns, "other"); string(v) != "value-of-other" || l.calls.Load() != 1 {
		t.Fatalf("other = %q after %d loads", v, l.calls.Load())
	}
}

// An entry loaded here while both owners served the partition gives way
// to the previous owner's (only it could change the key meanwhile); one of
// a higher version does not.
func TestAdopt_ReplacesAnEntryLoadedHereButNotANewerOne(t *testing.T) {
	ns, st, _, _ := newAdoptEnv(t, readThrough(), nil)
	ns.BeginAdopt()
	defer ns.EndAdopt()
	if v, _ := mustGet(t, ns, "k"); string(v) != "value-of-k" { // loaded here
		t.Fatalf("Get k = %q", v)
	}
	if !ns.Adopt("k", strategy.Entry{Value: []byte("previous"), Found: true, Version: 5, TTL: time.Minute}) {
		t.Fatal("Adopt refused to replace an entry loaded here")
	}
	if v, _ := mustGet(t, ns, "k"); string(v) != "previous" {
		t.Fatalf("Get k = %q, want the previous owner's entry", v)
	}
	if ns.Adopt("k", strategy.Entry{Value: []byte("older"), Found: true, Version: 4, TTL: time.Minute}) {
		t.Fatal("Adopt replaced an entry of a higher version")
	}
	if e, _ := st.Get(strategy.StoreKey("users", "k")); string(e.Value) != "previous" {
		t.Fatalf("entry = %q, want previous", e.Value)
	}
}
