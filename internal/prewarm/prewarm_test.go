package prewarm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/hotkeys"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func keys(n int) []hotkeys.Key {
	out := make([]hotkeys.Key, n)
	for i := range out {
		out[i] = hotkeys.Key{Namespace: "users", Key: fmt.Sprint(i)}
	}
	return out
}

func wait(t *testing.T, r *Run) Stats {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the warm did not end")
	}
	return r.Stats()
}

func TestRun_CountsEachOutcome(t *testing.T) {
	w := WarmerFunc(func(_ context.Context, _, key string) (strategy.WarmSource, bool, error) {
		switch key {
		case "0", "1":
			return strategy.WarmDatabase, true, nil
		case "2":
			return strategy.WarmPending, true, nil
		case "3":
			return strategy.WarmHeld, true, nil
		case "4":
			return strategy.WarmNotLoaded, false, nil
		case "5":
			return strategy.WarmNotLoaded, true, nil
		case "6":
			return strategy.WarmDatabase, true, errors.New("database down")
		}
		return strategy.WarmNotLoaded, false, errors.New("unknown namespace")
	})
	s := wait(t, Start(context.Background(), Config{Keys: keys(8), Warmer: w, Rate: 1e6}))
	want := Stats{Listed: 8, FromDatabase: 2, FromPending: 1, Held: 1, NotOwned: 1, Skipped: 2, Failed: 1, Done: true}
	if s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	if s.Loaded() != 3 {
		t.Fatalf("loaded %d, want 3", s.Loaded())
	}
}

func TestRun_BoundsLoadsInFlight(t *testing.T) {
	var running, most atomic.Int64
	var mu sync.Mutex
	w := WarmerFunc(func(context.Context, string, string) (strategy.WarmSource, bool, error) {
		n := running.Add(1)
		mu.Lock()
		most.Store(max(most.Load(), n))
		mu.Unlock()
		time.Sleep(time.Millisecond) // a load's duration, so workers overlap
		running.Add(-1)
		return strategy.WarmDatabase, true, nil
	})
	s := wait(t, Start(context.Background(), Config{Keys: keys(200), Warmer: w, Rate: 1e6, Workers: 3}))
	if s.FromDatabase != 200 {
		t.Fatalf("loaded %d of 200", s.FromDatabase)
	}
	if m := most.Load(); m > 3 {
		t.Fatalf("%d loads ran at once, want at most 3 workers", m)
	}
}

func TestRun_RateHoldsBackAndStopEndsIt(t *testing.T) {
	var tried atomic.Int64
	first := make(chan struct{}, 100)
	w := WarmerFunc(func(context.Context, string, string) (strategy.WarmSource, bool, error) {
		tried.Add(1)
		first <- struct{}{}
		return strategy.WarmDatabase, true, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	// One key per hour after a burst of Workers (2): the rest wait for
	// tokens that do not come before the stop.
	r := Start(ctx, Config{Keys: keys(100), Warmer: w, Rate: 1.0 / 3600, Workers: 2})
	<-first
	<-first
	cancel()
	s := wait(t, r)
	if n := tried.Load(); n != 2 || s.FromDatabase != 2 || !s.Done {
		t.Fatalf("tried %d keys (stats %+v); want the burst of 2, then nothing until the stop", n, s)
	}
}
