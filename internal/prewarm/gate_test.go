package prewarm

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// gateFixture runs a gate's goroutines on a WaitGroup that the test's
// cleanup closes and waits for, and signals each opening on opened.
type gateFixture struct {
	wg     sync.WaitGroup
	stop   chan struct{}
	opened chan struct{}
}

func newGate(t *testing.T, cfg GateConfig) (*Gate, *gateFixture) {
	t.Helper()
	f := &gateFixture{stop: make(chan struct{}), opened: make(chan struct{}, 1)}
	cfg.Go, cfg.Stop = f.wg.Go, f.stop
	cfg.OnOpen = func() { f.opened <- struct{}{} }
	t.Cleanup(func() {
		select {
		case <-f.stop:
		default:
			close(f.stop)
		}
		f.wg.Wait()
	})
	return NewGate(cfg), f
}

func (f *gateFixture) waitOpened(t *testing.T) {
	t.Helper()
	select {
	case <-f.opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the gate did not open")
	}
}

var loadAll = WarmerFunc(func(context.Context, string, string) (strategy.WarmSource, bool, error) {
	return strategy.WarmDatabase, true, nil
})

// blockUntilCancelled is a warmer whose loads last until the warm is
// cancelled.
var blockUntilCancelled = WarmerFunc(func(ctx context.Context, _, _ string) (strategy.WarmSource, bool, error) {
	<-ctx.Done()
	return strategy.WarmNotLoaded, true, ctx.Err()
})

func TestGate_OpenWhenThereIsNothingToWarm(t *testing.T) {
	for name, cfg := range map[string]GateConfig{
		"no keys":  {Budget: time.Minute, Warmer: loadAll},
		"0 budget": {Keys: keys(3), Warmer: loadAll},
	} {
		g, _ := newGate(t, cfg)
		if !g.Open() || g.Err() != nil {
			t.Errorf("%s: Open = %v, Err = %v; want open", name, g.Open(), g.Err())
		}
		g.Begin()
		g.Start(1)
		if s := g.Stats(); s != (Stats{}) {
			t.Errorf("%s: a warm ran: %+v", name, s)
		}
	}
}

func TestGate_OpensWhenTheWarmEnds(t *testing.T) {
	g, f := newGate(t, GateConfig{Keys: keys(3), Budget: time.Hour, Rate: 1e6, Warmer: loadAll})
	if g.Open() {
		t.Fatal("open before the warm")
	}
	if err := g.Err(); err == nil || !strings.Contains(err.Error(), "0 of 3 hot keys tried") {
		t.Fatalf("Err = %v, want the warm's progress", err)
	}
	g.Begin()
	g.Begin() // once
	g.Start(7)
	f.waitOpened(t)
	if !g.Open() || g.Err() != nil {
		t.Fatalf("Open = %v, Err = %v after the warm ended", g.Open(), g.Err())
	}
	if s := g.Stats(); !s.Done || s.FromDatabase != 3 {
		t.Fatalf("stats %+v, want 3 loaded and done", s)
	}
}

func TestGate_OpensWhenTheBudgetIsSpentAndTheWarmGoesOn(t *testing.T) {
	g, f := newGate(t, GateConfig{Keys: keys(3), Budget: 10 * time.Millisecond, Rate: 1e6, Warmer: blockUntilCancelled})
	g.Start(1)
	g.Begin()
	f.waitOpened(t)
	if s := g.Stats(); s.Done {
		t.Fatalf("the warm ended with the budget: %+v", s)
	}
	g.Cancel()
	deadline := time.Now().Add(10 * time.Second)
	for !g.Stats().Done {
		if time.Now().After(deadline) {
			t.Fatal("Cancel did not end the warm")
		}
		time.Sleep(time.Millisecond)
	}
	if s := g.Stats(); s.Failed+s.Skipped+s.FromDatabase != 0 {
		t.Fatalf("a cancelled load counted as an outcome: %+v", s)
	}
}

func TestGate_StopEndsTheWarmAndOpens(t *testing.T) {
	g, f := newGate(t, GateConfig{Keys: keys(3), Budget: time.Hour, Rate: 1e6, Warmer: blockUntilCancelled})
	g.Begin()
	g.Start(1)
	close(f.stop)
	f.waitOpened(t)
	f.wg.Wait() // every goroutine of the gate ends with stop
	if !g.Stats().Done {
		t.Fatal("the warm outlived stop")
	}
}

func TestGate_NoWarmStartsOnceOpen(t *testing.T) {
	g, f := newGate(t, GateConfig{Keys: keys(3), Budget: time.Millisecond, Warmer: WarmerFunc(func(context.Context, string, string) (strategy.WarmSource, bool, error) {
		return strategy.WarmNotLoaded, false, errors.New("must not be called")
	})})
	g.Begin()
	f.waitOpened(t)
	g.Start(1)
	if s := g.Stats(); s != (Stats{}) {
		t.Fatalf("a warm started after the budget was spent: %+v", s)
	}
}
