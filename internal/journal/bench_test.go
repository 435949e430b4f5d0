package journal

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var benchValue = make([]byte, 256)

// benchmarkAppend appends b.N new keys (256-byte values, durable: fsync on
// every commit) from the given number of goroutines and reports appends/s
// and appends per commit (fsync).
func benchmarkAppend(b *testing.B, writers int) {
	j := openTest(b, Options{MaxPending: 1 << 30})
	var next atomic.Int64
	before := commits(b, j)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				r := Record{Namespace: "bench", Key: strconv.FormatInt(i, 10), Value: benchValue, Version: 1}
				if err := j.Append(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(b.N)/float64(max(1, commits(b, j)-before)), "appends/commit")
}

func BenchmarkAppend_Parallel50(b *testing.B) { benchmarkAppend(b, 50) }

func BenchmarkAppend_Serial(b *testing.B) { benchmarkAppend(b, 1) }
