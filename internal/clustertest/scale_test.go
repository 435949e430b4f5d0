package clustertest_test

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/pkg/node"
)

// TestMain fails the package's tests if any goroutine outlives them, but
// for memberlist's that end by themselves (clustertest.LeakIgnores): a
// probe waits for its ack timer (the probe interval, 1 s on the local
// preset), longer than goleak retries.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, clustertest.LeakIgnores()...)
}

// Sizes of the scale test. CI runs the default; `make scale` runs the 50
// nodes of docs/capacity-planning.md.
const (
	defaultScaleNodes  = 12
	defaultScaleWindow = 3 * time.Second
	// defaultScaleSeeds is how many running nodes a starting node is given
	// to join (its --join list), as a deployment names a few seeds.
	defaultScaleSeeds = 3
	// agreeWithin bounds each convergence: generous, since it is a
	// liveness check, not a speed target (the figures are logged).
	agreeWithin = 60 * time.Second
)

// scaleSetting reads an integer or duration setting from the environment.
func scaleSetting[T int | time.Duration](t *testing.T, name string, def T, parse func(string) (T, error)) T {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive value", name, s)
	}
	return v
}

// liveHeap returns the bytes of live heap after a full collection.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func names(idx []int) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = clustertest.NodeName(i)
	}
	slices.Sort(out) // as rings list members
	return out
}

// agree waits until every running node routes by one partition table of
// the running nodes and returns how long that took since from.
func agree(t *testing.T, c *clustertest.Cluster, from time.Time) time.Duration {
	t.Helper()
	up := c.Up()
	c.WaitRingWithin(agreeWithin, up, names(up))
	return time.Since(from)
}

// TestScale_RingsAgreeAfterStartJoinCrash starts a cluster on memberlist's
// local preset (RINGCACHE_SCALE_NODES nodes, default 12, each joining the
// first RINGCACHE_SCALE_SEEDS running nodes, default 3) and holds that
// every node comes to route by one partition table of exactly the running
// nodes after a cold start, a join, the crash of a member and the crash of
// the coordinator. It logs the figures of docs/capacity-planning.md (Size
// of a cluster): each time to agreement, gossip and peer bytes per node per
// second while idle (over RINGCACHE_SCALE_WINDOW, default 3s), the bytes
// each change cost, and live heap per node.
func TestScale_RingsAgreeAfterStartJoinCrash(t *testing.T) {
	n := scaleSetting(t, "RINGCACHE_SCALE_NODES", defaultScaleNodes, strconv.Atoi)
	window := scaleSetting(t, "RINGCACHE_SCALE_WINDOW", defaultScaleWindow, time.ParseDuration)
	// RINGCACHE_SCALE_SEEDS=all gives each node every running node, as a
	// DNS name that resolves to every pod (a headless Service) does.
	seeds := 0 // all
	if os.Getenv("RINGCACHE_SCALE_SEEDS") != "all" {
		seeds = scaleSetting(t, "RINGCACHE_SCALE_SEEDS", defaultScaleSeeds, strconv.Atoi)
	}
	if n < 4 {
		t.Fatalf("RINGCACHE_SCALE_NODES=%d: want at least 4 (two crashes leave a cluster)", n)
	}
	heap0, goroutines0 := liveHeap(), runtime.NumGoroutine()
	c := clustertest.Start(t, 0, clustertest.Options{
		LogLevel: slog.LevelWarn,
		Configure: func(_ int, cfg *node.Config) {
			if seeds > 0 && len(cfg.Join) > seeds {
				cfg.Join = cfg.Join[:seeds]
			}
			cfg.GossipPreset = membership.PresetLocal
			cfg.TuneGossip = nil // memberlist's own local timers, not the tests' fast ones
		},
	})
	seedsName := "all"
	if seeds > 0 {
		seedsName = strconv.Itoa(seeds)
	}
	report := func(format string, args ...any) {
		t.Logf("scale n=%d seeds=%s: "+format, append([]any{n, seedsName}, args...)...)
	}

	// Cold start: nodes join n1 one after another, as a deployment starts them.
	began := time.Now()
	for range n {
		c.AddNode()
	}
	started := time.Since(began)
	took := agree(t, c, began)
	report("start: %d nodes started in %v; every ring agrees %v after the first start (%v after the last)",
		n, started.Round(time.Millisecond), took.Round(time.Millisecond), (took - started).Round(time.Millisecond))
	cost := c.Net.TotalTraffic()
	report("start: gossip %s, peer gRPC %s in all", kib(cost.Gossip()), kib(cost.Peer))

	// Idle: what membership costs when nothing changes. The window measures
	// a rate and samples the heap; nothing waits on it. The least of the
	// samples is the heap the nodes keep; the others include the buffers of
	// exchanges in flight.
	before, at := c.Net.TotalTraffic(), time.Now()
	var heaps []int64
	for len(heaps) == 0 || time.Since(at) < window {
		heaps = append(heaps, liveHeap()-heap0)
		time.Sleep(window / 10)
	}
	idle, secs := c.Net.TotalTraffic().Sub(before), time.Since(at).Seconds()
	slices.Sort(heaps)
	perNode := func(b int64) string { return kib(b / int64(n)) }
	report("memory: live heap per node %s (least of %d samples; median %s, most %s); %d goroutines per node",
		perNode(heaps[0]), len(heaps), perNode(heaps[len(heaps)/2]), perNode(heaps[len(heaps)-1]), (runtime.NumGoroutine()-goroutines0)/n)
	if idle.GossipPackets == 0 {
		t.Fatalf("no gossip packet counted in %v of %d idle nodes: the transport's meter is broken", window, n)
	}
	per := func(b int64) string { return fmt.Sprintf("%.0f B/s", float64(b)/secs/float64(n)) }
	report("idle over %v: per node gossip %s (packets %s, streams %s), peer gRPC %s",
		window, per(idle.Gossip()), per(idle.GossipPackets), per(idle.GossipStreams), per(idle.Peer))

	change := func(what string, do func()) {
		t.Helper()
		before, at := c.Net.TotalTraffic(), time.Now()
		do()
		took := agree(t, c, at)
		cost := c.Net.TotalTraffic().Sub(before)
		report("%s: every ring agrees after %v; gossip %s, peer gRPC %s in all meanwhile",
			what, took.Round(time.Millisecond), kib(cost.Gossip()), kib(cost.Peer))
	}
	change("join", func() { c.AddNode() })
	change("crash of a member", func() { c.Kill(n / 2) })
	// n1 started first, so it is the oldest member: the coordinator, whose
	// successor must adopt the newest table before it computes the next.
	change("crash of the coordinator", func() { c.Kill(0) })
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }
