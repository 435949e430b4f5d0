package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// A write load for the durability tests: concurrent writers Set keys of
// their own through the nodes, round robin. A third of the Sets rewrite one
// of the writer's earlier keys with the next value of that key, so each key
// carries a sequence of values, written one after another. Values are
// "<key>#<seq>", seq counting from 1 per key.

// loadEvent runs fn once the load has AtAcks acknowledged Sets.
type loadEvent struct {
	AtAcks int
	Name   string
	Fn     func()
}

// loadResult is what the writers saw.
type loadResult struct {
	// acked[key] is the highest seq of the key whose Set was acknowledged;
	// attempted[key] the highest seq sent (acknowledged or not).
	acked, attempted map[string]int
	ackedSets        int       // acknowledged Sets, rewrites included
	failedSets       int       // Sets that returned an error (each writer stops at its first error once the kill began)
	earlyErrors      []string  // errors before the last event began: unexpected
	eventAt          []float64 // seconds since the load began, per event
	took             time.Duration
}

func seqValue(key string, seq int) []byte { return fmt.Appendf(nil, "%s#%d", key, seq) }

// parseSeq returns the seq of a value written for key, or -1.
func parseSeq(key string, v []byte) int {
	s, ok := strings.CutPrefix(string(v), key+"#")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// runLoad runs writers against conns until the last event has run (the
// last event is expected to kill the nodes: the writers' calls fail from
// then on). Events run in order, each once its ack threshold is reached.
func runLoad(t *testing.T, conns []*nodeConn, ns, prefix string, writers int, seed uint64, events []loadEvent) loadResult {
	t.Helper()
	var (
		acks      atomic.Int64
		lastBegun atomic.Bool // the last event (the kill) has begun
		stop      atomic.Bool
		reached   = make([]chan struct{}, len(events))
		once      = make([]sync.Once, len(events))
		mu        sync.Mutex
		res       = loadResult{acked: map[string]int{}, attempted: map[string]int{}}
	)
	for i := range reached {
		reached[i] = make(chan struct{})
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			acked, attempted := map[string]int{}, map[string]int{}
			var keys []string
			var ackedSets, failed int
			var early []string
			for i := 0; !stop.Load(); i++ {
				var key string
				if len(keys) > 0 && rng.IntN(3) == 0 {
					key = keys[rng.IntN(len(keys))]
				} else {
					key = fmt.Sprintf("%sw%02d-%05d", prefix, w, len(keys))
					keys = append(keys, key)
				}
				seq := attempted[key] + 1
				attempted[key] = seq
				c := conns[(w+i)%len(conns)]
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.cache.Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: seqValue(key, seq)})
				cancel()
				if err != nil {
					failed++
					if lastBegun.Load() {
						break // the nodes are going down: this writer is done
					}
					if len(early) < 5 {
						early = append(early, fmt.Sprintf("set %s via %s: %v", key, c.name, err))
					}
					continue
				}
				acked[key] = seq
				ackedSets++
				n := int(acks.Add(1))
				for e := range events {
					if n >= events[e].AtAcks {
						once[e].Do(func() { close(reached[e]) })
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for k, s := range attempted {
				res.attempted[k] = s
			}
			for k, s := range acked {
				res.acked[k] = s
			}
			res.ackedSets += ackedSets
			res.failedSets += failed
			res.earlyErrors = append(res.earlyErrors, early...)
		})
	}
	for i, e := range events {
		select {
		case <-reached[i]:
		case <-time.After(60 * time.Second):
			stop.Store(true)
			wg.Wait()
			t.Fatalf("load: %d acknowledged Sets after 60s, waiting for %d to %s; errors: %v", acks.Load(), e.AtAcks, e.Name, res.earlyErrors)
		}
		if i == len(events)-1 {
			lastBegun.Store(true)
		}
		res.eventAt = append(res.eventAt, time.Since(start).Seconds())
		e.Fn()
	}
	stop.Store(true)
	wg.Wait()
	res.took = time.Since(start)
	slices.Sort(res.earlyErrors)
	return res
}

// verdict compares the database rows of a load's keys with what the load
// saw acknowledged.
type verdict struct {
	ackedKeys int // keys with at least one acknowledged Set
	stored    int // of those, keys whose row holds the last acknowledged value or a later one written
	exact     int // of those, rows holding exactly the last acknowledged value
	problems  []string
	nProblems int
}

// check demands, for every key with an acknowledged Set, a row whose value
// is its last acknowledged value or a later value the load sent (a Set cut
// by the kill may have been applied without its ack reaching the writer),
// and for every row, a value the load sent.
func (r loadResult) check(rows map[string]dbRow) verdict {
	var v verdict
	bad := func(format string, args ...any) {
		v.nProblems++
		if len(v.problems) < 10 {
			v.problems = append(v.problems, fmt.Sprintf(format, args...))
		}
	}
	keys := make([]string, 0, len(r.attempted))
	for k := range r.attempted {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		want, sent := r.acked[k], r.attempted[k]
		row, ok := rows[k]
		if want > 0 {
			v.ackedKeys++
		}
		switch {
		case !ok && want > 0:
			bad("%s: acknowledged #%d, no row: LOST", k, want)
		case !ok:
		case row.value == nil:
			bad("%s: acknowledged #%d, row is a tombstone", k, want)
		default:
			got := parseSeq(k, row.value)
			switch {
			case got < 0:
				bad("%s: row holds %q, never written", k, row.value)
			case got < want:
				bad("%s: acknowledged #%d, row holds older #%d (version %d): STALE", k, want, got, row.version)
			case got > sent:
				bad("%s: row holds #%d, only up to #%d was sent", k, got, sent)
			case want > 0:
				v.stored++
				if got == want {
					v.exact++
				}
			}
		}
	}
	for k := range rows {
		if _, ok := r.attempted[k]; !ok {
			bad("%s: row for a key the load never wrote", k)
		}
	}
	return v
}
