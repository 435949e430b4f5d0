// Package loadgen is the workload generator behind `ringcachectl bench`:
// callers issue Gets and Sets of a key space for a while, and each call's
// latency goes into an HDR histogram. The same generator drives a ringcache
// cluster or a Redis server (Target), so the two are measured through one
// code path.
package loadgen

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Target is what the generator loads: a ringcache namespace or a Redis
// server. Implementations are safe for concurrent use.
type Target interface {
	Get(ctx context.Context, key string) (found bool, err error)
	Set(ctx context.Context, key string, value []byte) error
	Close() error
}

// Key distributions.
const (
	Uniform = "uniform"
	Zipf    = "zipf"
)

// Config is one workload.
type Config struct {
	Concurrency int           // callers, each one call at a time
	Duration    time.Duration // measured phase
	ReadRatio   float64       // share of Gets, in [0, 1]
	Keys        int           // key space: key:0 … key:Keys-1
	KeyDist     string        // Uniform or Zipf
	ZipfS       float64       // Zipf exponent (> 1); default 1.1
	ValueSize   int           // bytes per Set
	// Prefill sets every key once before the measured phase, so Gets hit.
	Prefill bool
	// Seed makes the key sequence repeatable; 0 picks one.
	Seed int64
	// Progress, when set, is called about every 100 ms during the measured
	// phase with the time elapsed and the calls completed.
	Progress func(elapsed time.Duration, ops uint64)
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.Duration <= 0:
		return fmt.Errorf("duration must be positive, got %s", c.Duration)
	case c.ReadRatio < 0 || c.ReadRatio > 1:
		return fmt.Errorf("read ratio must be in [0, 1], got %g", c.ReadRatio)
	case c.Keys < 1:
		return fmt.Errorf("keys must be at least 1, got %d", c.Keys)
	case c.KeyDist != Uniform && c.KeyDist != Zipf:
		return fmt.Errorf("key distribution must be %s or %s, got %q", Uniform, Zipf, c.KeyDist)
	case c.KeyDist == Zipf && c.ZipfS != 0 && c.ZipfS <= 1:
		return fmt.Errorf("zipf exponent must be greater than 1, got %g", c.ZipfS)
	case c.ValueSize < 0:
		return fmt.Errorf("value size must not be negative, got %d", c.ValueSize)
	}
	return nil
}

// Result is what a run measured. Latencies are in microseconds.
type Result struct {
	Target      string        `json:"target"`
	Concurrency int           `json:"concurrency"`
	ReadRatio   float64       `json:"read_ratio"`
	Keys        int           `json:"keys"`
	KeyDist     string        `json:"key_dist"`
	ValueSize   int           `json:"value_size"`
	Elapsed     time.Duration `json:"-"`
	Seconds     float64       `json:"seconds"`
	// Ops counts every call; Gets and Sets the successful ones.
	Ops    uint64 `json:"ops"`
	Gets   uint64 `json:"gets"`
	Hits   uint64 `json:"hits"`
	Sets   uint64 `json:"sets"`
	Errors uint64 `json:"errors"`
	// CallsPerFrame is the average number of calls that shared a Pipeline
	// frame (ringcache only; 0 when unary or for Redis).
	CallsPerFrame float64 `json:"calls_per_frame,omitempty"`
	// FirstError is the first error seen, if any.
	FirstError string  `json:"first_error,omitempty"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	MeanUs     float64 `json:"mean_us"`
	P50Us      float64 `json:"p50_us"`
	P90Us      float64 `json:"p90_us"`
	P99Us      float64 `json:"p99_us"`
	P999Us     float64 `json:"p999_us"`
	MaxUs      float64 `json:"max_us"`

	hist *hdrhistogram.Histogram
}

// Histogram returns the merged latency histogram (microseconds).
func (r *Result) Histogram() *hdrhistogram.Histogram { return r.hist }

// Histogram bounds: 1 µs to 60 s at 3 significant digits.
const (
	histMin = 1
	histMax = 60_000_000
	histSig = 3
)

// KeyName is the name of key i, the same for every target.
func KeyName(i int) string { return "key:" + strconv.Itoa(i) }

// Run drives t with c until c.Duration has passed or ctx ends. Failed calls
// are counted, not fatal; Run fails only on an invalid config or when
// prefilling fails.
func Run(ctx context.Context, t Target, c Config) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.Seed == 0 {
		c.Seed = time.Now().UnixNano()
	}
	keys := make([]string, c.Keys)
	for i := range keys {
		keys[i] = KeyName(i)
	}
	value := make([]byte, c.ValueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	if c.Prefill {
		if err := fill(ctx, t, func(i int) string { return keys[i] }, len(keys), value, c.Concurrency); err != nil {
			return nil, fmt.Errorf("prefill: %w", err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var (
		ops      atomic.Uint64
		errs     atomic.Uint64
		firstErr atomic.Pointer[error]
		workers  = make([]*worker, c.Concurrency)
		wg       sync.WaitGroup
	)
	framesBefore := frames(t)
	start := time.Now()
	for i := range workers {
		w := &worker{
			rng:  rand.New(rand.NewSource(c.Seed + int64(i))),
			hist: hdrhistogram.New(histMin, histMax, histSig),
		}
		if c.KeyDist == Zipf {
			w.zipf = rand.NewZipf(w.rng, c.ZipfS, 1, uint64(c.Keys-1))
		}
		workers[i] = w
		wg.Go(func() {
			// The deadline is checked by the clock, not only ctx.Err(): a
			// call may fail with DeadlineExceeded at the deadline a moment
			// before this process's timer marks ctx done.
			deadline, _ := ctx.Deadline()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				key := keys[w.next(c.Keys)]
				read := w.rng.Float64() < c.ReadRatio
				t0 := time.Now()
				var (
					found bool
					err   error
				)
				if read {
					found, err = t.Get(ctx, key)
				} else {
					err = t.Set(ctx, key, value)
				}
				if err != nil && (ctx.Err() != nil || !time.Now().Before(deadline)) {
					break // the run ended during the call: not counted
				}
				_ = w.hist.RecordValue(max(time.Since(t0).Microseconds(), histMin))
				ops.Add(1)
				switch {
				case err != nil:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				case read:
					w.gets++
					if found {
						w.hits++
					}
				default:
					w.sets++
				}
			}
		})
	}
	if c.Progress != nil {
		wg.Go(func() {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					c.Progress(min(time.Since(start), c.Duration), ops.Load())
					return
				case <-tick.C:
					c.Progress(time.Since(start), ops.Load())
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	r := &Result{
		Concurrency: c.Concurrency, ReadRatio: c.ReadRatio, Keys: c.Keys, KeyDist: c.KeyDist, ValueSize: c.ValueSize,
		Elapsed: elapsed, Seconds: elapsed.Seconds(), Errors: errs.Load(),
		hist: hdrhistogram.New(histMin, histMax, histSig),
	}
	if p := firstErr.Load(); p != nil {
		r.FirstError = (*p).Error()
	}
	for _, w := range workers {
		r.hist.Merge(w.hist)
		r.Gets += w.gets
		r.Hits += w.hits
		r.Sets += w.sets
	}
	r.Ops = uint64(r.hist.TotalCount())
	if f := frames(t) - framesBefore; f > 0 {
		r.CallsPerFrame = float64(r.Ops) / float64(f)
	}
	r.OpsPerSec = float64(r.Ops) / elapsed.Seconds()
	r.MeanUs = r.hist.Mean()
	r.P50Us = float64(r.hist.ValueAtQuantile(50))
	r.P90Us = float64(r.hist.ValueAtQuantile(90))
	r.P99Us = float64(r.hist.ValueAtQuantile(99))
	r.P999Us = float64(r.hist.ValueAtQuantile(99.9))
	r.MaxUs = float64(r.hist.Max())
	return r, nil
}

// framer is a Target that counts the frames it sent.
type framer interface{ Frames() uint64 }

func frames(t Target) uint64 {
	if f, ok := t.(framer); ok {
		return f.Frames()
	}
	return 0
}

// worker is one caller's state: its own random source and histogram, so
// callers share nothing while they run.
type worker struct {
	rng              *rand.Rand
	zipf             *rand.Zipf
	hist             *hdrhistogram.Histogram
	gets, hits, sets uint64
}

func (w *worker) next(n int) int {
	if w.zipf != nil {
		return int(w.zipf.Uint64())
	}
	return w.rng.Intn(n)
}

// Fill sets keyPrefix+"0" … keyPrefix+(n-1) to value, with concurrency
// callers. It stops at the first failure.
func Fill(ctx context.Context, t Target, keyPrefix string, n int, value []byte, concurrency int) error {
	return fill(ctx, t, func(i int) string { return keyPrefix + strconv.Itoa(i) }, n, value, concurrency)
}

func fill(ctx context.Context, t Target, key func(i int) string, n int, value []byte, concurrency int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := t.Set(ctx, key(i), value); err != nil {
					cancel(fmt.Errorf("set %s: %w", key(i), err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
