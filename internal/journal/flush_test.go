package journal

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestJournal_ConcurrentFlushLosesNothing runs writers (overlapping keys,
// increasing versions) against a flusher that takes the oldest records,
// "writes" them to a fake database that keeps the highest version per key,
// and acks them. When all is flushed, the database holds the last version
// of every key: an Ack never removed a write the database had not seen.
func TestJournal_ConcurrentFlushLosesNothing(t *testing.T) {
	j := openTest(t, Options{})
	const writers, each, keys = 10, 60, 25
	var version atomic.Uint64
	var mu sync.Mutex
	latest := map[string]uint64{} // highest version acknowledged per key
	db := map[string]uint64{}     // the fake database

	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprint(i % keys)
				mu.Lock() // versions reach the journal in order per key, as the owner's HLC would
				v := version.Add(1)
				err := j.Append(context.Background(), set("ns", key, fmt.Sprint(v), v))
				if err == nil {
					latest[key] = max(latest[key], v)
				}
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	flush := func() int {
		recs, err := j.Oldest(7)
		if err != nil {
			t.Error(err)
			return 0
		}
		for _, r := range recs {
			if r.Version > db[r.Key] {
				db[r.Key] = r.Version
			}
		}
		if err := j.Ack(recs); err != nil {
			t.Error(err)
		}
		return len(recs)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			flush()
		}
	}
	for flush() > 0 {
	}
	if s := mustStats(t, j); s.Pending != 0 || s.PendingBytes != 0 {
		t.Errorf("after the final flush Stats = %+v", s)
	}
	for key, v := range latest {
		if db[key] != v {
			t.Errorf("key %s: database has v%d, last acknowledged v%d", key, db[key], v)
		}
	}
}
