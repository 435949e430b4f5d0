package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/telemetry"
	"github.com/ringcache/ringcache/internal/telemetry/telemetrytest"
	"github.com/ringcache/ringcache/pkg/node"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// newTelemetry returns a telemetry with metrics (and no trace export),
// shut down at the end of the test.
func newTelemetry(t *testing.T, name string) *telemetry.Telemetry {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Node: name, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func scrape(t *testing.T, tel *telemetry.Telemetry) telemetrytest.Families {
	t.Helper()
	f, err := telemetrytest.ScrapeHandler(tel.Handler(telemetry.HandlerOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wantMetric(t *testing.T, f telemetrytest.Families, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := f.Sum(name, labels...)
	if !ok {
		t.Errorf("%s%v is missing; families: %v", name, labels, f.Names())
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestMetrics_CountAKnownWorkload(t *testing.T) {
	tel := newTelemetry(t, "n1")
	c := clustertest.Start(t, 1, clustertest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.MeterProvider = tel.MeterProvider()
		cfg.TracerProvider = tel.TracerProvider()
	}})
	// 4 distinct keys, 3 of them in the database: N = 10 gets, M = 4 misses
	// (the first get of each key), 4 backend loads, 1 negative hit.
	for _, k := range []string{"a", "b", "c"} {
		c.DB.Put(k, []byte("v-"+k))
	}
	keys := []string{"a", "a", "b", "c", "a", "b", "nobody", "nobody", "c", "c"}
	const n, m = 10, 4
	cache := c.Cache(0)
	for _, k := range keys {
		if _, err := cache.Get(ctxT(t), &pb.GetRequest{Namespace: clustertest.NSUsers, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	// Server spans and histograms are recorded when a call ends, which the
	// client may see a moment before the server's stats handler runs.
	var f telemetrytest.Families
	clustertest.Eventually(t, 5*time.Second, func() error {
		f = scrape(t, tel)
		if got, _ := f.Sum("ringcache_rpc_server_call_duration_seconds", "rpc_method", "ringcache.v1.Cache/Get"); got != n {
			return fmt.Errorf("Cache/Get latency histogram counts %v calls, want %d", got, n)
		}
		return nil
	})
	users := []string{"namespace", clustertest.NSUsers}
	wantMetric(t, f, n, "ringcache_gets_total", users...)
	wantMetric(t, f, m, "ringcache_misses_total", users...)
	wantMetric(t, f, n-m, "ringcache_hits_total", users...)
	wantMetric(t, f, m, "ringcache_backend_loads_total", users...)
	wantMetric(t, f, 1, "ringcache_negative_hits_total", users...)
	wantMetric(t, f, 0, "ringcache_backend_load_errors_total", users...)
	wantMetric(t, f, 0, "ringcache_gets_total", "namespace", clustertest.NSCache)
	wantMetric(t, f, 0, "ringcache_forwards_total")
	wantMetric(t, f, 1, "ringcache_members", "state", "alive")
	wantMetric(t, f, 0, "ringcache_members", "state", "dead")
	wantMetric(t, f, float64(c.Node(0).Ring().PartitionCount()), "ringcache_ring_partitions")
	wantMetric(t, f, n, "ringcache_rpc_server_call_duration_seconds", "rpc_method", "ringcache.v1.Cache/Get", "rpc_response_status_code", "OK")
	if got, _ := f.Sum("ringcache_store_entries"); got != m {
		t.Errorf("ringcache_store_entries = %v, want %d (3 values and 1 not-found)", got, m)
	}
	if got, _ := f.Sum("ringcache_store_bytes"); got <= 0 {
		t.Errorf("ringcache_store_bytes = %v, want > 0", got)
	}
	wantMetric(t, f, 64<<20, "ringcache_store_max_bytes")
	if got, _ := f.Sum("ringcache_connected_clients"); got < 1 {
		t.Errorf("ringcache_connected_clients = %v, want ≥ 1 (the test's connection)", got)
	}
	if _, ok := f["ringcache_journal_pending"]; ok {
		t.Error("a node without a journal reports journal metrics")
	}
	// The admin Stats RPC and the metrics read the same counters.
	s := nsStats(stats(t, c, 0), clustertest.NSUsers)
	if s.Gets != n || s.Misses != m {
		t.Errorf("Stats RPC: gets %d misses %d, want %d and %d", s.Gets, s.Misses, n, m)
	}
	if os.Getenv("RINGCACHE_DUMP_METRICS") != "" {
		rec := httptest.NewRecorder()
		tel.Handler(telemetry.HandlerOptions{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		t.Log(rec.Body.String())
	}
}

func TestMetrics_JournalAndForwards(t *testing.T) {
	tels := []*telemetry.Telemetry{newTelemetry(t, "n1"), newTelemetry(t, "n2")}
	c := clustertest.Start(t, 2, clustertest.Options{WriteBehind: true, Configure: func(i int, cfg *node.Config) {
		cfg.MeterProvider = tels[i].MeterProvider()
	}})
	key := keyOwnedBy(t, c, clustertest.NSOrders, 1)
	if _, err := c.Cache(0).Set(ctxT(t), &pb.SetRequest{Namespace: clustertest.NSOrders, Key: key, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		f := scrape(t, tels[1])
		if got, _ := f.Sum("ringcache_journal_flushed_total"); got != 1 {
			return fmt.Errorf("owner flushed %v records, want 1", got)
		}
		return nil
	})
	f0, f1 := scrape(t, tels[0]), scrape(t, tels[1])
	wantMetric(t, f0, 1, "ringcache_forwards_total")
	wantMetric(t, f0, 0, "ringcache_forward_errors_total")
	wantMetric(t, f1, 1, "ringcache_forwarded_in_total")
	wantMetric(t, f1, 1, "ringcache_sets_total", "namespace", clustertest.NSOrders)
	wantMetric(t, f1, 0, "ringcache_journal_pending")
	wantMetric(t, f1, 0, "ringcache_journal_pending_bytes")
	wantMetric(t, f1, 0, "ringcache_journal_dead_letters")
	wantMetric(t, f1, 0, "ringcache_journal_oldest_pending_age_seconds")
	wantMetric(t, f1, 0, "ringcache_journal_flush_errors_total")
	if got, _ := f1.Sum("ringcache_journal_max_pending"); got <= 0 {
		t.Errorf("ringcache_journal_max_pending = %v, want the bound", got)
	}
	// What deploy/prometheus/alerts.yaml alerts on, as the node names it.
	for _, name := range []string{"ringcache_accept_errors_total", "ringcache_connections_refused_total",
		"ringcache_watch_dropped_total", "ringcache_stream_send_timeouts_total",
		"ringcache_under_replicated_writes_total", "ringcache_replication_failures_total"} {
		wantMetric(t, f1, 0, name)
	}
	wantMetric(t, f1, 1, "ringcache_replication_in_sync")
	wantMetric(t, f0, 2, "ringcache_members", "state", "alive")
	p0, _ := f0.Sum("ringcache_ring_partitions")
	p1, _ := f1.Sum("ringcache_ring_partitions")
	if int(p0+p1) != c.Node(0).Ring().PartitionCount() {
		t.Errorf("nodes own %v + %v partitions, want %d in all", p0, p1, c.Node(0).Ring().PartitionCount())
	}
	if got, _ := f0.Sum("ringcache_ring_changes_total"); got < 1 {
		t.Errorf("ringcache_ring_changes_total = %v, want ≥ 1 after the second node joined", got)
	}
	// The forward (over the peers' stream: no trace is sampled) shows in
	// the forwarding node's latency histogram.
	wantMetric(t, f0, 1, "ringcache_forward_latency_seconds")
}

func TestNode_ReadyMirrorsHealth(t *testing.T) {
	tel := newTelemetry(t, "n1")
	c := clustertest.Start(t, 1, clustertest.Options{})
	n := c.Node(0)
	h := tel.Handler(telemetry.HandlerOptions{Ready: n.NotReady})
	readyz := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if !n.Ready() || readyz() != http.StatusOK {
		t.Fatalf("a running node: Ready %v, /readyz %d", n.Ready(), readyz())
	}
	c.Stop(0)
	if n.Ready() || readyz() != http.StatusServiceUnavailable {
		t.Fatalf("a stopped node: Ready %v, /readyz %d", n.Ready(), readyz())
	}
}

func TestMetrics_PipelineFramesOpsAndWaits(t *testing.T) {
	tel := newTelemetry(t, "n1")
	c := clustertest.Start(t, 1, clustertest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.MeterProvider = tel.MeterProvider()
	}})
	c.DB.Put("u1", []byte("alice"))
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// One frame: a cache-aside Set and a miss (answered from memory), and
	// a read-through miss that loads (waits).
	ops := []*pb.PipelineOp{
		{Id: 1, Op: &pb.PipelineOp_Set{Set: &pb.SetRequest{Namespace: clustertest.NSCache, Key: "k", Value: []byte("v")}}},
		{Id: 2, Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: clustertest.NSCache, Key: "nope"}}},
		{Id: 3, Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: clustertest.NSUsers, Key: "u1"}}},
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < 3; {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got += len(resp.Results)
	}
	f := scrape(t, tel)
	wantMetric(t, f, 1, "ringcache_pipeline_frames_total")
	wantMetric(t, f, 3, "ringcache_pipeline_ops_total")
	wantMetric(t, f, 1, "ringcache_pipeline_waits_total")
}
