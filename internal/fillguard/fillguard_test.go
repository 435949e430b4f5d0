package fillguard_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ringcache/ringcache/internal/fillguard"
)

func TestGuard_FillAfterInvalidationFails(t *testing.T) {
	var g fillguard.Guard
	tok := g.Token("k")
	g.Invalidate("k", nil)
	if g.Fill(tok, func() { t.Fatal("store ran after an invalidation") }) {
		t.Fatal("Fill reported a store after an invalidation")
	}
	ran := false
	if !g.Fill(g.Token("k"), func() { ran = true }) || !ran {
		t.Fatal("a fill with a fresh token did not store")
	}
}

func TestGuard_OtherKeysUnaffected(t *testing.T) {
	var g fillguard.Guard
	// Find a key on another stripe than "a": most are.
	other := ""
	for i := range 100 {
		k := fmt.Sprint("b", i)
		tok := g.Token(k)
		g.Invalidate("a", nil)
		if g.Fill(tok, func() {}) {
			other = k
			break
		}
	}
	if other == "" {
		t.Fatal("every key failed its fill after invalidating another key")
	}
}

// TestGuard_NoStaleSurvivor races readers that fill with writers that
// invalidate: after every writer is done and has invalidated, no reader may
// have left a value older than the last write in the cache.
func TestGuard_NoStaleSurvivor(t *testing.T) {
	var g fillguard.Guard
	var mu sync.Mutex
	var source, cached int // the owner's value, and the cached copy (-1: none)
	cached = -1
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				tok := g.Token("k")
				mu.Lock()
				v := source // the read
				mu.Unlock()
				g.Fill(tok, func() { mu.Lock(); cached = v; mu.Unlock() })
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 2000 {
				mu.Lock()
				source++
				mu.Unlock()
				g.Invalidate("k", func() { mu.Lock(); cached = -1; mu.Unlock() })
			}
		})
	}
	wg.Wait()
	if cached != -1 && cached != source {
		t.Fatalf("cache holds %d after the last write %d was invalidated", cached, source)
	}
}

func BenchmarkGuard_TokenFill(b *testing.B) {
	var g fillguard.Guard
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("namespace\x00key-", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			g.Fill(g.Token(k), func() {})
			i++
		}
	})
}
