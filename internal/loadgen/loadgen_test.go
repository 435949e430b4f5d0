package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// memTarget is a map behind a mutex that counts its calls; failKey, when
// set, makes calls of that key fail.
type memTarget struct {
	mu         sync.Mutex
	m          map[string][]byte
	gets, sets map[string]int
	failKey    string
}

func newMemTarget() *memTarget {
	return &memTarget{m: map[string][]byte{}, gets: map[string]int{}, sets: map[string]int{}}
}

func (t *memTarget) Get(_ context.Context, key string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gets[key]++
	if key == t.failKey {
		return false, errors.New("boom")
	}
	_, ok := t.m[key]
	return ok, nil
}

func (t *memTarget) Set(_ context.Context, key string, value []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sets[key]++
	if key == t.failKey {
		return errors.New("boom")
	}
	t.m[key] = append([]byte(nil), value...)
	return nil
}

func (t *memTarget) Close() error { return nil }

func TestRun_MixPrefillAndHistogram(t *testing.T) {
	tg := newMemTarget()
	var progress int
	res, err := Run(context.Background(), tg, Config{
		Concurrency: 4, Duration: 200 * time.Millisecond, ReadRatio: 0.9, Keys: 500,
		KeyDist: Uniform, ValueSize: 100, Prefill: true, Seed: 1,
		Progress: func(time.Duration, uint64) { progress++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Ops != res.Gets+res.Sets+res.Errors {
		t.Fatalf("ops %d, gets %d, sets %d", res.Ops, res.Gets, res.Sets)
	}
	if res.Hits != res.Gets {
		t.Errorf("%d hits of %d gets after prefilling every key", res.Hits, res.Gets)
	}
	if share := float64(res.Gets) / float64(res.Ops); share < 0.85 || share > 0.95 {
		t.Errorf("read share %.3f, want about 0.9", share)
	}
	for i := range 500 {
		if v := tg.m[KeyName(i)]; len(v) != 100 {
			t.Fatalf("key %d holds %d bytes after prefill, want 100", i, len(v))
		}
	}
	if !(res.P50Us <= res.P99Us && res.P99Us <= res.MaxUs && res.P50Us >= 1) {
		t.Errorf("percentiles out of order: p50 %v p99 %v max %v", res.P50Us, res.P99Us, res.MaxUs)
	}
	if res.OpsPerSec <= 0 || res.Errors != 0 || progress == 0 {
		t.Errorf("ops/s %v, errors %d, progress calls %d", res.OpsPerSec, res.Errors, progress)
	}
}

func TestRun_CountsErrorsWithoutStopping(t *testing.T) {
	tg := newMemTarget()
	tg.failKey = KeyName(0)
	res, err := Run(context.Background(), tg, Config{Concurrency: 2, Duration: 100 * time.Millisecond, ReadRatio: 0.5, Keys: 2, KeyDist: Uniform, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || !strings.Contains(res.FirstError, "boom") {
		t.Fatalf("errors %d, first %q", res.Errors, res.FirstError)
	}
	if res.Errors >= res.Ops {
		t.Fatalf("every call failed (%d of %d): the good key was not called", res.Errors, res.Ops)
	}
}

func TestRun_ZipfSkewsTowardsFewKeys(t *testing.T) {
	tg := newMemTarget()
	if _, err := Run(context.Background(), tg, Config{Concurrency: 2, Duration: 100 * time.Millisecond, ReadRatio: 1, Keys: 10000, KeyDist: Zipf, ZipfS: 1.2, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	total, top := 0, tg.gets[KeyName(0)]
	for _, n := range tg.gets {
		total += n
	}
	// Uniform would give key 0 one call in 10,000; Zipf(1.2) gives it about a fifth.
	if float64(top)/float64(total) < 0.05 {
		t.Fatalf("key 0 got %d of %d gets: not skewed", top, total)
	}
}

func TestConfig_ValidateNamesTheField(t *testing.T) {
	ok := Config{Concurrency: 1, Duration: time.Second, ReadRatio: 0.9, Keys: 1, KeyDist: Uniform}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{func(c *Config) { c.Duration = 0 }, "duration"},
		{func(c *Config) { c.ReadRatio = 1.5 }, "read ratio"},
		{func(c *Config) { c.Keys = 0 }, "keys"},
		{func(c *Config) { c.KeyDist = "normal" }, "distribution"},
		{func(c *Config) { c.KeyDist, c.ZipfS = Zipf, 0.9 }, "zipf"},
		{func(c *Config) { c.ValueSize = -1 }, "value size"},
	} {
		c := ok
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %q, got %v", tc.want, err)
		}
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFill_SetsEveryKeyOnceAndStopsOnError(t *testing.T) {
	tg := newMemTarget()
	if err := Fill(context.Background(), tg, "p:", 1000, []byte("v"), 8); err != nil {
		t.Fatal(err)
	}
	if len(tg.sets) != 1000 {
		t.Fatalf("%d distinct keys set, want 1000", len(tg.sets))
	}
	for k, n := range tg.sets {
		if n != 1 {
			t.Fatalf("%s set %d times", k, n)
		}
	}
	tg.failKey = "q:7"
	if err := Fill(context.Background(), tg, "q:", 100, []byte("v"), 1); err == nil || !strings.Contains(err.Error(), "q:7") {
		t.Fatalf("want the failing key named, got %v", err)
	}
}

func TestNewRedis_RejectsBadURLs(t *testing.T) {
	for _, u := range []string{"http://x:1", "redis://", "127.0.0.1:6379"} {
		if _, err := NewRedis(u, "ns", 1); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}
