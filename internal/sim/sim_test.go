package sim

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ringcache/ringcache/internal/store"
)

// cycle returns a trace that asks keys 0..k-1 in order, rounds times.
func cycle(k, rounds int) *Trace {
	b := make([]string, 0, k*rounds)
	for range rounds {
		for i := range k {
			b = append(b, string(rune('a'+i%26))+itoa(i))
		}
	}
	t, err := ReadTrace(stringsReader(b), TraceOptions{ValueSize: 100})
	if err != nil {
		panic(err)
	}
	return t
}

func zipf(t *testing.T, s float64, keys uint64, requests int) *Trace {
	t.Helper()
	tr, err := Zipf(ZipfConfig{S: s, Keys: keys, Requests: requests, ValueSize: 100, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestRun_HitRateGrowsWithSize(t *testing.T) {
	tr := zipf(t, 1.1, 5000, 20000)
	sizes := []Size{{Entries: 2000}, {Entries: 50}, {Entries: 500}}
	res, err := Run(t.Context(), tr, sizes, Config{Warmup: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3", len(res))
	}
	for i, want := range []uint64{50, 500, 2000} {
		r := res[i]
		if r.Size.Entries != want {
			t.Errorf("result %d is for %v, want %d entries (sorted)", i, r.Size, want)
		}
		if r.Hits+r.Misses != 16000 {
			t.Errorf("%v: %d requests counted, want 16000 (after 20%% warm-up)", r.Size, r.Hits+r.Misses)
		}
		if r.Bytes > r.MaxBytes {
			t.Errorf("%v: cache holds %d bytes, over its bound %d", r.Size, r.Bytes, r.MaxBytes)
		}
		// A full cache holds about as many entries as asked for.
		if r.Entries < int(want)*9/10 || r.Entries > int(want)*11/10 {
			t.Errorf("%v: cache holds %d entries", r.Size, r.Entries)
		}
		t.Logf("%v: %.1f %% hits, %d evictions", r.Size, 100*r.HitRate(), r.Evictions)
	}
	for i := 1; i < len(res); i++ {
		if res[i].HitRate() < res[i-1].HitRate()+0.05 {
			t.Errorf("hit rate %.3f at %v is not 5 pts above %.3f at %v", res[i].HitRate(), res[i].Size, res[i-1].HitRate(), res[i-1].Size)
		}
	}
	if res[0].Evictions == 0 {
		t.Error("the smallest cache evicted nothing")
	}
}

func TestRun_CycleFitsWhenSizeCoversKeys(t *testing.T) {
	const k, rounds = 500, 8
	tr := cycle(k, rounds)
	res, err := Run(t.Context(), tr, []Size{{Entries: k}, {Entries: k / 2}}, Config{Warmup: 1.0 / rounds})
	if err != nil {
		t.Fatal(err)
	}
	half, full := res[0], res[1]
	if full.Hits != uint64(k*(rounds-1)) || full.Misses != 0 {
		t.Errorf("%d entries: %d hits %d misses, want every request after the first round to hit", k, full.Hits, full.Misses)
	}
	if full.Evictions != 0 || full.Entries != k {
		t.Errorf("%d entries: %d evictions, %d entries held; want 0 and %d", k, full.Evictions, full.Entries, k)
	}
	// A loop over twice the cache is LRU's worst case; W-TinyLFU keeps a
	// part of it, but not all.
	if hr := half.HitRate(); hr > 0.6 {
		t.Errorf("%d entries on a loop of %d keys: hit rate %.2f, want at most 0.6", k/2, k, hr)
	}
}

func TestRun_MoreSkewMoreHits(t *testing.T) {
	size := []Size{{Entries: 200}}
	low, err := Run(t.Context(), zipf(t, 1.05, 10000, 20000), size, Config{Warmup: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	high, err := Run(t.Context(), zipf(t, 1.5, 10000, 20000), size, Config{Warmup: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := low[0].HitRate(), high[0].HitRate(); hi < lo+0.1 {
		t.Errorf("s=1.5 hit rate %.3f, s=1.05 %.3f: want the skewed trace 10 pts higher", hi, lo)
	}
}

func TestRun_BytesBoundCountsKeyValueAndOverhead(t *testing.T) {
	// 10 keys of 2 bytes and 100-byte values weigh store.Charge(2, 100) each.
	tr := cycle(10, 4)
	w := uint64(store.Charge(2, 100))
	res, err := Run(t.Context(), tr, []Size{{Bytes: 10 * w}, {Bytes: 10*w - 1}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if res[1].Evictions != 0 || res[1].Entries != 10 {
		t.Errorf("10 entries of %d B in %d B: %d evictions, %d entries", w, res[1].MaxBytes, res[1].Evictions, res[1].Entries)
	}
	if res[0].Evictions == 0 || res[0].Entries > 9 {
		t.Errorf("10 entries of %d B in %d B: %d evictions, %d entries; want one left out", w, res[0].MaxBytes, res[0].Evictions, res[0].Entries)
	}
}

func TestRun_ReportsProgressOfEveryRequest(t *testing.T) {
	tr := zipf(t, 1.1, 1000, 3*100+5)
	var n, calls atomic.Int64
	cfg := Config{ProgressEvery: 100, Progress: func(r int) { n.Add(int64(r)); calls.Add(1) }}
	if _, err := Run(t.Context(), tr, []Size{{Entries: 10}, {Entries: 20}}, cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := n.Load(), int64(2*tr.Len()); got != want {
		t.Errorf("progress counted %d requests, want %d", got, want)
	}
	if got := calls.Load(); got != 2*4 {
		t.Errorf("progress called %d times, want 4 per size (3 × 100 requests and the last 5)", got)
	}
}

func TestRun_RejectsBadInput(t *testing.T) {
	tr := cycle(3, 1)
	ctx := context.Background()
	for name, run := range map[string]func() error{
		"warm-up 1": func() error { _, err := Run(ctx, tr, []Size{{Entries: 1}}, Config{Warmup: 1}); return err },
		"warm-up -": func() error { _, err := Run(ctx, tr, []Size{{Entries: 1}}, Config{Warmup: -0.1}); return err },
		"no sizes":  func() error { _, err := Run(ctx, tr, nil, Config{}); return err },
		"duplicate": func() error { _, err := Run(ctx, tr, []Size{{Entries: 5}, {Entries: 5}}, Config{}); return err },
		"mixed":     func() error { _, err := Run(ctx, tr, []Size{{Entries: 5}, {Bytes: 5}}, Config{}); return err },
		"zero size": func() error { _, err := Run(ctx, tr, []Size{{}}, Config{}); return err },
		"empty":     func() error { _, err := Run(ctx, &Trace{}, []Size{{Entries: 1}}, Config{}); return err },
	} {
		if err := run(); err == nil {
			t.Errorf("%s: Run succeeded", name)
		}
	}
}

func TestRun_StopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Run(ctx, cycle(3, 1), []Size{{Entries: 1}}, Config{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func BenchmarkReplay(b *testing.B) {
	tr, err := Zipf(ZipfConfig{S: 1.1, Keys: 100000, Requests: 100000, ValueSize: 100, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Run(b.Context(), tr, []Size{{Entries: 10000}}, Config{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tr.Len()), "ns/request")
}
