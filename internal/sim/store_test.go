package sim

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/store"
)

// TestRun_MatchesTheNodeStore replays one trace through Run and through a
// real store.Store of the same bound, as a node would use it (Get, then
// SetIfAbsent on a miss), and checks that the hit rates agree. It fails if
// the store's weighing or policy drifts from what the simulation models.
func TestRun_MatchesTheNodeStore(t *testing.T) {
	const valueSize = 100
	tr, err := Zipf(ZipfConfig{S: 1.05, Keys: 20000, Requests: 30000, ValueSize: valueSize, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	size := Size{Entries: 1000}
	res, err := Run(t.Context(), tr, []Size{size}, Config{Warmup: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	sim := res[0]

	s, err := store.New(store.Config{MaxBytes: sim.MaxBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, valueSize)
	warm := WarmupRequests(tr.Len(), 0.25)
	var hits, misses int
	for i, k := range tr.keys {
		key := "key:" + strconv.FormatUint(uint64(k), 10)
		if _, ok := s.Get(key); ok {
			if i >= warm {
				hits++
			}
			continue
		}
		if i >= warm {
			misses++
		}
		s.SetIfAbsent(key, store.Entry{Value: value, Found: true})
	}
	real := float64(hits) / float64(hits+misses)
	t.Logf("%v: simulated %.2f %% hits, store %.2f %%", size, 100*sim.HitRate(), 100*real)
	if d := math.Abs(sim.HitRate() - real); d > 0.03 {
		t.Errorf("simulated hit rate %.3f, store %.3f: differ by more than 3 pts", sim.HitRate(), real)
	}
	// Weighed alike, both hold about the same number of entries once the
	// store's asynchronous maintenance has caught up with the last writes.
	near := func(st store.Stats) bool {
		return math.Abs(float64(st.Entries)-float64(sim.Entries)) <= 0.05*float64(sim.Entries) && st.Bytes <= sim.MaxBytes
	}
	deadline := time.Now().Add(10 * time.Second)
	for !near(s.Stats()) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); !near(st) {
		t.Errorf("store holds %d entries (%d of %d bytes), simulation %d", st.Entries, st.Bytes, sim.MaxBytes, sim.Entries)
	}
}
