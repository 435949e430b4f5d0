package strategy_test

import (
	"context"
	"testing"
)

// A caller that missed just before another caller's load of the key cached
// its result reaches the single flight after that load ended. It answers
// from the cache instead of loading the key a second time.
func TestLoad_AfterAnotherLoadCachedTheKeyDoesNotLoadAgain(t *testing.T) {
	ctx := context.Background()
	l := valueLoader()
	e := newEnv(t, readThrough(), l)
	if _, _, answered, err := e.ns.Peek("k"); answered || err != nil {
		t.Fatalf("Peek of a cold key: answered=%v err=%v, want a miss to load", answered, err)
	}
	// Meanwhile, another caller misses, loads and caches the key.
	if v, _, err := e.ns.Get(ctx, "k"); err != nil || string(v) != "value-of-k" {
		t.Fatalf("Get(k) = %q, %v", v, err)
	}
	v, found, err := e.ns.Load(ctx, "k")
	if err != nil || !found || string(v) != "value-of-k" {
		t.Fatalf("Load(k) after the key was cached = %q, %v, %v", v, found, err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("the database was asked %d times for one key, want 1", n)
	}
	if s := e.ns.Stats(); s.Loads != 1 || s.LoadsDeduped != 1 {
		t.Fatalf("stats: %d loads, %d deduplicated; want 1 and 1", s.Loads, s.LoadsDeduped)
	}
}
