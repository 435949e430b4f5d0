package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/internal/telemetry/telemetrytest"
	"github.com/ringcache/ringcache/pkg/client"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// A rolling restart under load, on real ringcached processes and a real
// PostgreSQL: every node in turn gets SIGTERM, exits 0, starts again on the
// same data directory and is waited for until it reports SERVING, while
// readers of the Go client Get keys of a read-through namespace drawn from
// a Zipf distribution. No call may fail, and each restarted node must have
// warmed keys from the hot-key list it wrote when it stopped.
//
// RINGCACHE_ROLL_BENCH=1 runs the longer measurement of docs/benchmarks.md
// instead: the same roll with the warm off (--prewarm-budget 0) and on,
// printing the database queries per second through each roll.

// rollOptions shape one rolling restart.
type rollOptions struct {
	budget  time.Duration // --prewarm-budget; 0: no warm
	rows    int           // keys in the table
	readers int           // client goroutines
	warmup  time.Duration // load before the first restart
	settle  time.Duration // load after each node is back, before the next goes
	zipfS   float64
}

// rollResult is what the readers and the database saw.
type rollResult struct {
	calls, failed int64
	failures      []string
	// loadsPerSec[i] is the database loads (ringcache's loads of the
	// namespace, all nodes) in second i of the run; events name seconds.
	loadsPerSec []int64
	events      map[int]string
	rollFrom    int // second the first SIGTERM was sent
	rollTo      int // second the last node was back and settled
	prewarm     map[string]map[string]float64
}

// rollConfig is a read-through namespace on PostgreSQL; the hot-key list
// is written every second.
func rollConfig(dsn string) string {
	return fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  users:
    backend: main
    read: through
    write: aside
    ttl: 30m
    load_sql: SELECT profile FROM users WHERE id = $1
prewarm:
  interval: 1s
`, dsn)
}

// seedUsers creates the users table with rows keys "0".."rows-1".
func seedUsers(t *testing.T, dsn string, rows int) {
	t.Helper()
	pgExec(t, dsn, `CREATE TABLE users (id text PRIMARY KEY, profile text NOT NULL)`)
	pgExec(t, dsn, `INSERT INTO users SELECT g::text, '{"id":"' || g || '"}' FROM generate_series(0, $1::int - 1) g`, rows)
}

// loadsOf sums the loads of namespace users the node reports.
func loadsOf(c *nodeConn) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.admin.Stats(ctx, &pb.StatsRequest{})
	if err != nil {
		return 0, err
	}
	for _, ns := range st.GetNamespaces() {
		if ns.GetName() == "users" {
			return ns.GetLoads(), nil
		}
	}
	return 0, fmt.Errorf("%s reports no namespace users", c.name)
}

// rollingRestart starts three nodes, runs the readers, rolls every node
// once and returns what was seen.
func rollingRestart(t *testing.T, dsn string, o rollOptions) rollResult {
	t.Helper()
	f := newFleet(t, "n1", "n2", "n3")
	admin := map[string]string{}
	for _, p := range f.all {
		a, err := freeAddr()
		if err != nil {
			t.Fatal(err)
		}
		admin[p.name] = a
	}
	f.perNode = func(name string) []string {
		return []string{"--admin-addr", admin[name], "--prewarm-budget", o.budget.String()}
	}
	config := f.writeConfig("roll.yaml", rollConfig(dsn))
	f.launch(config, nil, f.all...)
	f.waitUp(3, f.all...)

	var seeds []string
	for _, p := range f.all {
		seeds = append(seeds, p.grpcAddr)
	}
	cl, err := client.New(client.Options{Seeds: seeds})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	res := rollResult{events: map[int]string{}, prewarm: map[string]map[string]float64{}}
	start := time.Now()
	second := func() int { return int(time.Since(start) / time.Second) }
	var (
		stop     atomic.Bool
		calls    atomic.Int64
		failed   atomic.Int64
		mu       sync.Mutex
		wg       sync.WaitGroup
		failures []string
	)
	seed := rand.Uint64()
	t.Logf("zipf seed %d", seed)
	for r := range o.readers {
		wg.Go(func() {
			z := rand.NewZipf(rand.New(rand.NewPCG(seed, uint64(r))), o.zipfS, 1, uint64(o.rows-1))
			for !stop.Load() {
				key := strconv.FormatUint(z.Uint64(), 10)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				v, found, err := cl.Get(ctx, "users", key)
				cancel()
				calls.Add(1)
				if err == nil && (!found || !strings.Contains(string(v), `"`+key+`"`)) {
					err = fmt.Errorf("got %q (found %v)", v, found)
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%.1fs get %s: %v (reason %s)", time.Since(start).Seconds(), key, err, client.Reason(err)))
					}
					mu.Unlock()
				}
			}
		})
	}
	// The database's queries: every node's loads, polled every 100 ms;
	// a counter that went down belongs to a restarted process.
	conns := dial(t, f.all...)
	wg.Go(func() {
		last := map[string]uint64{}
		for !stop.Load() {
			for _, c := range conns {
				n, err := loadsOf(c)
				if err != nil {
					continue // stopped or starting
				}
				d := n - last[c.name]
				if n < last[c.name] {
					d = n
				}
				last[c.name] = n
				mu.Lock()
				s := second()
				for len(res.loadsPerSec) <= s {
					res.loadsPerSec = append(res.loadsPerSec, 0)
				}
				res.loadsPerSec[s] += int64(d)
				mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	mark := func(what string) {
		mu.Lock()
		res.events[second()] += what + " "
		mu.Unlock()
	}

	time.Sleep(o.warmup) // load, not a wait for the cluster: the caches warm
	res.rollFrom = second()
	for _, p := range f.all {
		mark("SIGTERM " + p.name)
		terminate(t, 60*time.Second, p)
		f.launch(config, nil, p)
		f.waitUp(3, f.all...)
		mark(p.name + " ready")
		// Ready may come before the warm has gone through its list (a
		// table that includes the node can come after the node is
		// ready): read its counters once it has, or after 10 s.
		for deadline := time.Now().Add(10 * time.Second); ; {
			w := prewarmOf(t, admin[p.name])
			tried := 0.0
			for _, v := range w {
				tried += v
			}
			res.prewarm[p.name] = w
			if tried > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(o.settle) // load between restarts, as a rollout's minReadySeconds
	}
	res.rollTo = second()
	stop.Store(true)
	wg.Wait()
	res.calls, res.failed, res.failures = calls.Load(), failed.Load(), failures
	return res
}

// prewarmOf scrapes the warm's counters of the node at addr by outcome.
func prewarmOf(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	var fam telemetrytest.Families
	eventually(t, 10*time.Second, "the warm's counters on "+addr, func() error {
		var err error
		fam, err = telemetrytest.ScrapeURL(http.DefaultClient, "http://"+addr+"/metrics")
		if err == nil && fam["ringcache_prewarm_keys_total"] == nil {
			err = fmt.Errorf("no ringcache_prewarm_keys_total; families %v", fam.Names())
		}
		return err
	})
	for _, o := range []string{"pending", "database", "held", "not_owned", "skipped", "failed"} {
		out[o], _ = fam.Sum("ringcache_prewarm_keys_total", "outcome", o)
	}
	return out
}

func TestRollingRestart_NoFailedCallsAndTheHotKeysAreWarmed(t *testing.T) {
	if os.Getenv("RINGCACHE_ROLL_BENCH") != "" {
		rollBench(t)
		return
	}
	dsn := pgtest.NewDatabase(t)
	o := rollOptions{budget: 5 * time.Second, rows: 5000, readers: 8, warmup: 3 * time.Second, settle: 2 * time.Second, zipfS: 1.1}
	seedUsers(t, dsn, o.rows)
	res := rollingRestart(t, dsn, o)
	t.Logf("%d calls, %d failed; warm per node: %v", res.calls, res.failed, res.prewarm)
	if res.calls < 1000 {
		t.Fatalf("only %d calls during the roll: the load did not run", res.calls)
	}
	if res.failed != 0 {
		t.Fatalf("%d of %d client calls failed during the rolling restart, e.g.:\n  %s", res.failed, res.calls, strings.Join(res.failures, "\n  "))
	}
	// Every restarted node went through its list with no failure: a listed
	// key it owns is loaded, or already held (the warm hand-over brought it
	// from the partition's interim owner); a rejoining node may be given
	// other partitions than it had, so some lists are all not_owned. Across
	// the cluster, listed keys were warmed.
	warmed := 0.0
	for name, w := range res.prewarm {
		tried := 0.0
		for _, v := range w {
			tried += v
		}
		if tried == 0 || w["failed"] != 0 {
			t.Errorf("%s did not go through its listed keys after its restart: %v", name, w)
		}
		warmed += w["database"] + w["pending"] + w["held"]
	}
	if warmed == 0 {
		t.Errorf("no restarted node warmed a listed key: %v", res.prewarm)
	}
}

// rollBench measures the database queries per second through a roll with
// the warm off and on (docs/benchmarks.md).
func rollBench(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	o := rollOptions{rows: 100000, readers: 16, warmup: 20 * time.Second, settle: 15 * time.Second, zipfS: 1.01}
	seedUsers(t, dsn, o.rows)
	for _, budget := range []time.Duration{0, 5 * time.Second} {
		o.budget = budget
		res := rollingRestart(t, dsn, o)
		var b strings.Builder
		var total, peak int64
		for s := res.rollFrom; s < len(res.loadsPerSec) && s < res.rollTo; s++ {
			total += res.loadsPerSec[s]
			peak = max(peak, res.loadsPerSec[s])
		}
		fmt.Fprintf(&b, "prewarm-budget %v: %d calls, %d failed; during the roll (%ds): %d database queries, peak %d/s; warm per node %v\n",
			budget, res.calls, res.failed, res.rollTo-res.rollFrom, total, peak, res.prewarm)
		b.WriteString("second  queries/s  event\n")
		for s, n := range res.loadsPerSec {
			fmt.Fprintf(&b, "%6d  %9d  %s\n", s, n, res.events[s])
		}
		t.Log("\n" + b.String())
		if res.failed != 0 {
			t.Errorf("%d calls failed: %v", res.failed, res.failures)
		}
	}
}
