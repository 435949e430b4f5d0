package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// hangingLoader blocks every load until its context ends, counting loads
// running and loads that saw their context end.
type hangingLoader struct {
	running, cancelled atomic.Int64
}

func (l *hangingLoader) Load(ctx context.Context, _ string) ([]byte, bool, error) {
	l.running.Add(1)
	defer l.running.Add(-1)
	<-ctx.Done()
	l.cancelled.Add(1)
	return nil, false, ctx.Err()
}

// Issue 13, break 5: a load whose callers all gave up is cancelled, not
// left running for load_timeout, so a flood of cold keys with short
// deadlines does not pile up loads.
func TestNamespace_LoadNobodyWaitsForIsCancelled(t *testing.T) {
	l := &hangingLoader{}
	p := readThrough()
	p.LoadTimeout = time.Hour
	e := newEnv(t, p, l)
	const keys = 200
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, _, err := e.ns.Get(ctx, fmt.Sprint("k", k)); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Get of a hanging key = %v, want its deadline", err)
			}
		})
	}
	wg.Wait()
	waitFor(t, "every abandoned load to end", func() bool { return l.running.Load() == 0 && e.ns.Stats().LoadsRunning == 0 })
	if got := l.cancelled.Load(); got != keys {
		t.Fatalf("%d of %d abandoned loads saw their context end", got, keys)
	}
}

// A shared load goes on while one caller still waits.
func TestNamespace_LoadGoesOnWhileACallerWaits(t *testing.T) {
	b := newBlockingLoad()
	e := newEnv(t, readThrough(), b)
	short, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { _, _, err := e.ns.Get(short, "k"); done <- err }()
	<-b.started
	go func() { _, _, err := e.ns.Get(context.Background(), "k"); done <- err }()
	waitFor(t, "two callers on the load", func() bool { return e.ns.Stats().LoadsWaiting == 2 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v", err)
	}
	b.results <- loadReply{value: []byte("v"), found: true}
	if err := <-done; err != nil {
		t.Fatalf("the caller still waiting got %v; the load must not be cancelled for it", err)
	}
}

// Past MaxLoads loads in flight a miss fails at once with backpressure.
func TestNamespace_MaxLoadsFailsFast(t *testing.T) {
	l := &hangingLoader{}
	p := readThrough()
	p.MaxLoads = 4
	e := newEnv(t, p, l)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Go(func() { _, _, _ = e.ns.Get(ctx, fmt.Sprint("held", k)) })
	}
	waitFor(t, "4 loads running", func() bool { return l.running.Load() == 4 })
	start := time.Now()
	_, _, err := e.ns.Get(context.Background(), "one-more")
	if !errors.Is(err, strategy.ErrBackpressure) {
		t.Fatalf("Get past MaxLoads = %v, want ErrBackpressure", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("refusal took %v: it must not wait", time.Since(start))
	}
	if s := e.ns.Stats(); s.LoadsRefused != 1 || s.LoadsRunning != 4 {
		t.Fatalf("refused %d, running %d; want 1 and 4", s.LoadsRefused, s.LoadsRunning)
	}
	cancel()
	wg.Wait()
}

// With LoadConcurrency below a shared database's connections, one
// namespace's hanging loads leave connections for another's.
func TestNamespace_LoadConcurrencyLeavesRoomForOthers(t *testing.T) {
	const conns = 4
	var used atomic.Int64 // the shared database's busy connections
	slow := strategy.LoaderFunc(func(ctx context.Context, _ string) ([]byte, bool, error) {
		if used.Add(1) > conns {
			t.Error("the database ran out of connections")
		}
		defer used.Add(-1)
		<-ctx.Done()
		return nil, false, ctx.Err()
	})
	fast := strategy.LoaderFunc(func(context.Context, string) ([]byte, bool, error) {
		if used.Add(1) > conns {
			t.Error("the database ran out of connections")
		}
		defer used.Add(-1)
		return []byte("v"), true, nil
	})
	pa, pb := readThrough(), readThrough()
	pa.Name, pb.Name = "a", "b"
	pa.LoadConcurrency, pb.LoadConcurrency = conns-1, conns-1
	a, b := newEnv(t, pa, slow), newEnv(t, pb, fast)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k := range 50 {
		wg.Go(func() { _, _, _ = a.ns.Get(ctx, fmt.Sprint("slow", k)) })
	}
	waitFor(t, "a holding its share", func() bool { return used.Load() == conns-1 })
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer bcancel()
	if v, found, err := b.ns.Get(bctx, "k"); err != nil || !found || string(v) != "v" {
		t.Fatalf("b's load while a's hang = %q %v %v", v, found, err)
	}
	cancel()
	wg.Wait()
}
