package sim

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/errgroup"
)

// noExpiry is the store's lifetime of an entry without a TTL.
const noExpiry = 100 * 365 * 24 * time.Hour

// defaultProgressEvery is the default of Config.ProgressEvery.
const defaultProgressEvery = 1 << 16

// Config tunes Run.
type Config struct {
	// Warmup is the fraction of the trace, from its start, that is replayed
	// but not counted, in [0, 1). 0.1 skips the cold start of the first
	// tenth of the requests.
	Warmup float64
	// Parallelism bounds how many sizes are replayed at once; ≤ 0 means
	// GOMAXPROCS. Each replay runs on one goroutine.
	Parallelism int
	// Progress, when set, is called with the number of requests replayed
	// since its previous call, every ProgressEvery requests of each replay
	// and at its end. It is called from several goroutines at once.
	Progress func(requests int)
	// ProgressEvery is how many requests a replay makes between two calls
	// of Progress and two checks of Run's context; ≤ 0 means 65,536.
	ProgressEvery int
}

// Validate reports an invalid field.
func (c Config) Validate() error {
	if !(c.Warmup >= 0 && c.Warmup < 1) {
		return fmt.Errorf("warm-up fraction must be in [0, 1), got %g", c.Warmup)
	}
	return nil
}

// Result is the outcome of replaying a trace against one cache size.
type Result struct {
	// Size is the size asked for; MaxBytes the store bound it became.
	Size     Size
	MaxBytes uint64
	// Entries and Bytes are what the cache held at the end of the replay.
	Entries int
	Bytes   uint64
	// Hits and Misses count the requests after the warm-up.
	Hits   uint64
	Misses uint64
	// Evictions counts entries evicted for space during the whole replay.
	Evictions uint64
}

// HitRate returns Hits / (Hits + Misses), 0 without requests.
func (r Result) HitRate() float64 {
	if n := r.Hits + r.Misses; n > 0 {
		return float64(r.Hits) / float64(n)
	}
	return 0
}

// WarmupRequests returns how many requests of a trace of n requests a warm-up
// fraction skips.
func WarmupRequests(n int, warmup float64) int { return int(float64(n) * warmup) }

// Run replays t once per size, up to cfg.Parallelism replays at once, and
// returns the results sorted by size. Sizes must be positive, distinct and
// all in one unit. Run stops early with ctx's error when ctx ends.
func Run(ctx context.Context, t *Trace, sizes []Size, cfg Config) ([]Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if t.Len() == 0 {
		return nil, ErrEmptyTrace
	}
	sorted, err := sortSizes(sizes)
	if err != nil {
		return nil, err
	}
	par := cfg.Parallelism
	if par <= 0 {
		par = runtime.GOMAXPROCS(0)
	}
	warm := WarmupRequests(t.Len(), cfg.Warmup)
	every := cfg.ProgressEvery
	if every <= 0 {
		every = defaultProgressEvery
	}
	results := make([]Result, len(sorted))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for i, s := range sorted {
		g.Go(func() error {
			r, err := replay(ctx, t, s.MaxBytes(t.MeanEntryBytes()), warm, cfg.Progress, every)
			r.Size = s
			results[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// replay runs t through a fresh cache of maxBytes, counting after warm
// requests.
func replay(ctx context.Context, t *Trace, maxBytes uint64, warm int, progress func(int), every int) (Result, error) {
	r := Result{MaxBytes: maxBytes}
	c, err := otter.New(&otter.Options[uint32, uint32]{
		MaximumWeight: maxBytes,
		// The value is the entry's weight (see package doc).
		Weigher:          func(_, weight uint32) uint32 { return weight },
		ExpiryCalculator: otter.ExpiryWriting[uint32, uint32](noExpiry),
		Clock:            stoppedClock{},
		// Maintenance on the caller's goroutine: each access is applied to
		// the policy before the next one, whatever the scheduler does.
		Executor: func(fn func()) { fn() },
		Logger:   &otter.NoopLogger{},
		OnAtomicDeletion: func(e otter.DeletionEvent[uint32, uint32]) {
			if e.Cause == otter.CauseOverflow {
				r.Evictions++ // under the eviction lock, on this goroutine
			}
		},
	})
	if err != nil {
		return r, fmt.Errorf("creating a cache of %d bytes: %w", maxBytes, err)
	}
	defer c.StopAllGoroutines()

	for i, k := range t.keys {
		if i%every == 0 {
			if err := ctx.Err(); err != nil {
				return r, err
			}
			if progress != nil && i > 0 {
				progress(every)
			}
		}
		if _, ok := c.GetIfPresent(k); ok {
			if i >= warm {
				r.Hits++
			}
			continue
		}
		if i >= warm {
			r.Misses++
		}
		c.SetIfAbsent(k, t.weights[i])
	}
	if progress != nil {
		progress((t.Len()-1)%every + 1)
	}
	c.CleanUp()
	r.Entries, r.Bytes = c.EstimatedSize(), c.WeightedSize()
	return r, nil
}

// stoppedClock never advances and never ticks, so nothing expires and the
// cache starts no periodic clean-up goroutine.
type stoppedClock struct{}

func (stoppedClock) NowNano() int64                      { return 0 }
func (stoppedClock) Tick(time.Duration) <-chan time.Time { return nil }
