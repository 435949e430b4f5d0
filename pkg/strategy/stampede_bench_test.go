package strategy_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Expiry stampede, on the wall clock: stampedeReaders goroutines read one
// hot key, each every stampedeEvery, from a read-through namespace whose
// loads take stampedeLoad. One benchmark iteration is one TTL of wall time,
// so every figure is per expiry interval (-benchtime 20x: 20 TTLs):
//
//	misses/expiry   Gets that found no entry and waited for a load
//	loads/expiry    database loads (misses' loads and refreshes)
//	stalls/expiry   Gets slower than stampedeStall (they waited on a load)
//
// Results are in docs/benchmarks.md. Run with
//
//	go test -run '^$' -bench ExpiryStampede -benchtime 20x ./pkg/strategy
const (
	stampedeReaders = 1000
	stampedeEvery   = 10 * time.Millisecond
	stampedeTTL     = time.Second
	stampedeLoad    = 5 * time.Millisecond
	stampedeStall   = stampedeLoad / 2
)

func BenchmarkExpiryStampede(b *testing.B) {
	for _, mode := range []struct {
		name string
		p    func(*strategy.Policy)
	}{
		{"none", func(*strategy.Policy) {}},
		{"threshold-0.8", func(p *strategy.Policy) { p.RefreshAhead = 0.8 }},
		{"xfetch-beta-1", func(p *strategy.Policy) { p.XFetchBeta = 1 }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			p := strategy.Policy{Name: "bench", Read: strategy.ReadThrough, TTL: stampedeTTL}
			mode.p(&p)
			runStampede(b, p)
		})
	}
}

func runStampede(b *testing.B, p strategy.Policy) {
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var loads atomic.Int64
	l := strategy.LoaderFunc(func(ctx context.Context, _ string) ([]byte, bool, error) {
		loads.Add(1)
		select { // the database's work
		case <-time.After(stampedeLoad):
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		return []byte("value"), true, nil
	})
	ns, err := strategy.New(p, strategy.Deps{Store: st, Loader: l})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	ctx, cancel := context.WithCancel(context.Background())
	if _, _, err := ns.Get(ctx, "hot"); err != nil {
		b.Fatal(err)
	}
	base, baseLoads := ns.Stats(), loads.Load()
	var stalls atomic.Int64
	var wg sync.WaitGroup
	for range stampedeReaders {
		wg.Go(func() {
			t := time.NewTicker(stampedeEvery)
			defer t.Stop()
			for {
				start := time.Now()
				if _, _, err := ns.Get(ctx, "hot"); err != nil && ctx.Err() == nil {
					b.Error(err)
					return
				}
				if time.Since(start) > stampedeStall {
					stalls.Add(1)
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * stampedeTTL) // the workload: b.N expiry intervals of reads
	b.StopTimer()
	cancel()
	wg.Wait()
	s := ns.Stats()
	n := float64(b.N)
	b.ReportMetric(float64(s.Misses-base.Misses)/n, "misses/expiry")
	b.ReportMetric(float64(loads.Load()-baseLoads)/n, "loads/expiry")
	b.ReportMetric(float64(stalls.Load())/n, "stalls/expiry")
	b.ReportMetric(float64(s.Gets-base.Gets)/n, "gets/expiry")
}
