package nodemetrics

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc/stats"

	"github.com/ringcache/ringcache/internal/connlimit"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/prewarm"
	"github.com/ringcache/ringcache/internal/replica"
	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// collected is one collection's metrics by name.
type collected map[string]metricdata.Metrics

func collect(t *testing.T, r *sdkmetric.ManualReader) collected {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := collected{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != Scope {
			t.Errorf("scope %q, want %q", sm.Scope.Name, Scope)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// int64Value returns the value of name's data point with the attributes
// kv (name=value pairs).
func (c collected) int64Value(t *testing.T, name string, kv ...string) int64 {
	t.Helper()
	var points []metricdata.DataPoint[int64]
	switch d := c[name].Data.(type) {
	case metricdata.Sum[int64]:
		points = d.DataPoints
	case metricdata.Gauge[int64]:
		points = d.DataPoints
	default:
		t.Fatalf("%s: no int64 data (%T)", name, c[name].Data)
	}
	var attrs []attribute.KeyValue
	for i := 0; i+1 < len(kv); i += 2 {
		attrs = append(attrs, attribute.String(kv[i], kv[i+1]))
	}
	want := attribute.NewSet(attrs...)
	for _, p := range points {
		if p.Attributes.Equals(&want) {
			return p.Value
		}
	}
	t.Fatalf("%s%v: no data point", name, kv)
	return 0
}

func newReader() (*sdkmetric.ManualReader, metric.MeterProvider) {
	r := sdkmetric.NewManualReader()
	return r, sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
}

func testRing(t *testing.T) *ring.Ring {
	t.Helper()
	r, err := ring.New(ring.Config{PartitionCount: 256}, []ring.Member{{Name: "n1", Addr: "a1"}, {Name: "n2", Addr: "a2"}}, 3)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func allParts(t *testing.T, now time.Time, journalErr error) []Part {
	snap := &pb.StatsResponse{
		Namespaces: []*pb.NamespaceStats{{Gets: 7, Hits: 5, LoadsRefused: 2, LoadsWaiting: 3}, {Gets: 1}},
		Forwards:   11, Store: &pb.StoreStats{Bytes: 1000, MaxBytes: 4096, Entries: 9, Evictions: 4},
		HotCache: &pb.HotCacheStats{Hits: 13, Streams: 2},
	}
	r := testRing(t)
	src := JournalSources{
		Stats: func() (journal.Stats, error) {
			return journal.Stats{Pending: 5, PendingBytes: 500, Oldest: now.Add(-3 * time.Second), MaxPending: 100, DeadLetters: 1}, journalErr
		},
		Flusher:  func() journal.FlusherStats { return journal.FlusherStats{Flushed: 40, Failures: 2} },
		Replicas: func() (journal.ReplicaStats, error) { return journal.ReplicaStats{Pending: 6, Bytes: 600}, nil },
		Replication: func() engine.ReplicationStats {
			return engine.ReplicationStats{InSync: true, Takeovers: 1, UnderReplicated: 3, Links: replica.Stats{Stored: 20, FailedFrames: 1}}
		},
		Now: func() time.Time { return now },
	}
	return []Part{
		Node(NodeSources{
			Self: "n1", Namespaces: []string{"users", "orders"}, Snapshot: func() *pb.StatsResponse { return snap },
			OpenConns: func() int64 { return 8 }, Members: func() membership.Counts { return membership.Counts{Alive: 2, Dead: 1} },
			Ring: func() *ring.Ring { return r }, HotCache: true,
		}),
		Limits(LimitSources{
			Conns:          func() connlimit.Stats { return connlimit.Stats{Clients: 5, Peers: 2, Refused: 9} },
			Hub:            func() service.HubStats { return service.HubStats{Subscribers: 4, Dropped: 1} },
			SendTimeouts:   func() uint64 { return 6 },
			MaxConnections: 1000,
		}),
		Prewarm(func() prewarm.Stats { return prewarm.Stats{FromDatabase: 10, Held: 4} }),
		Warm(func() engine.WarmStats { return engine.WarmStats{EntriesIn: 12, Dropped: 3, HeldBytes: 640} }),
		Journal(src),
		Replication(src),
	}
}

// every instrument name the parts register; deploy/'s alert rules and
// docs/operations.md rely on them.
var wantNames = []string{
	"accept_errors", "backend_load_errors", "backend_loads", "backend_loads_deduplicated", "backend_loads_refused",
	"backend_loads_running", "backpressure", "clock_rejections", "connected_clients", "connection_limit", "connections",
	"connections_refused", "connections_struck", "deletes", "flushes", "forward_errors", "forwarded_in", "forwards",
	"gets", "handed_over", "handover_bytes_in", "handover_bytes_out", "handover_dropped", "handover_entries_in",
	"handover_entries_out", "handover_held_bytes", "handover_lookups_served", "handover_misses_served", "hits", "hot_cache_bytes", "hot_cache_entries", "hot_cache_fills", "hot_cache_hits",
	"hot_cache_invalidations", "hot_cache_max_bytes", "hot_cache_resets", "hot_cache_streams", "journal_dead_letters",
	"journal_flush_errors", "journal_flushed", "journal_max_pending", "journal_oldest_pending_age", "journal_pending",
	"journal_pending_bytes", "lease_rejected", "lease_waits", "leases_granted", "loads_waiting", "members", "misses",
	"negative_hits", "pending_hits", "pipeline_frames", "pipeline_ops", "pipeline_waits", "prewarm_keys",
	"refreshes", "refreshes_skipped", "replica_pending", "replica_pending_bytes", "replicated", "replication_failures",
	"replication_in_sync", "ring_changes", "ring_partitions", "sets", "store_bytes", "store_entries", "store_evictions",
	"store_max_bytes", "stream_send_timeouts", "taken_over", "takeovers", "under_replicated_writes", "watch_backlog",
	"watch_dropped", "watch_refused", "watch_subscribers", "write_errors", "xfetch_refreshes",
}

func TestRegister_EveryInstrumentObservesItsSource(t *testing.T) {
	reader, mp := newReader()
	now := time.Unix(1_700_000_000, 0)
	if _, err := Register(mp, allParts(t, now, nil)...); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	var names []string
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, wantNames) {
		t.Errorf("instruments\n got %v\nwant %v", names, wantNames)
	}
	for name, unit := range map[string]string{"store_bytes": "By", "journal_oldest_pending_age": "s", "members": "{member}", "replication_in_sync": "", "watch_backlog": "By"} {
		if got[name].Unit != unit {
			t.Errorf("%s: unit %q, want %q", name, got[name].Unit, unit)
		}
	}
	if d := got["backend_loads_refused"].Description; d != "Misses refused (RESOURCE_EXHAUSTED) because max_concurrent_loads loads were in flight." {
		t.Errorf("backend_loads_refused: description %q", d)
	}
	for _, c := range []struct {
		name string
		kv   []string
		want int64
	}{
		{"gets", []string{"namespace", "users"}, 7},
		{"gets", []string{"namespace", "orders"}, 1},
		{"backend_loads_refused", []string{"namespace", "users"}, 2},
		{"loads_waiting", []string{"namespace", "users"}, 3},
		{"forwards", nil, 11},
		{"store_evictions", nil, 4},
		{"store_max_bytes", nil, 4096},
		{"connected_clients", nil, 8},
		{"members", []string{"state", "alive"}, 2},
		{"members", []string{"state", "dead"}, 1},
		{"members", []string{"state", "left"}, 0},
		{"ring_changes", nil, 2},
		{"ring_partitions", nil, int64(testRing(t).Partitions("n1"))},
		{"hot_cache_hits", nil, 13},
		{"hot_cache_streams", nil, 2},
		{"connections", []string{"kind", "client"}, 5},
		{"connections", []string{"kind", "peer"}, 2},
		{"connection_limit", nil, 1000},
		{"connections_refused", nil, 9},
		{"watch_subscribers", nil, 4},
		{"watch_dropped", nil, 1},
		{"stream_send_timeouts", nil, 6},
		{"prewarm_keys", []string{"outcome", "database"}, 10},
		{"prewarm_keys", []string{"outcome", "held"}, 4},
		{"prewarm_keys", []string{"outcome", "failed"}, 0},
		{"handover_entries_in", nil, 12},
		{"handover_dropped", nil, 3},
		{"handover_held_bytes", nil, 640},
		{"journal_pending", nil, 5},
		{"journal_flushed", nil, 40},
		{"journal_flush_errors", nil, 2},
		{"journal_dead_letters", nil, 1},
		{"replication_in_sync", nil, 1},
		{"under_replicated_writes", nil, 3},
		{"replicated", nil, 20},
		{"replica_pending_bytes", nil, 600},
	} {
		if v := got.int64Value(t, c.name, c.kv...); v != c.want {
			t.Errorf("%s%v = %d, want %d", c.name, c.kv, v, c.want)
		}
	}
	age := got["journal_oldest_pending_age"].Data.(metricdata.Gauge[float64]).DataPoints[0].Value
	if age != 3 {
		t.Errorf("journal_oldest_pending_age = %v, want 3", age)
	}
}

func TestJournal_ClosingJournalSkipsItsGaugesOnly(t *testing.T) {
	reader, mp := newReader()
	if _, err := Register(mp, allParts(t, time.Now(), journal.ErrClosed)...); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	if _, ok := got["journal_pending"]; ok {
		t.Error("journal_pending observed although the journal is closing")
	}
	if v := got.int64Value(t, "journal_flushed"); v != 40 {
		t.Errorf("journal_flushed = %d, want 40", v)
	}
}

func TestNode_WithoutHotCacheRegistersNoHotInstruments(t *testing.T) {
	reader, mp := newReader()
	part := Node(NodeSources{
		Snapshot: func() *pb.StatsResponse { return &pb.StatsResponse{} }, OpenConns: func() int64 { return 0 },
		Members: func() membership.Counts { return membership.Counts{} }, Ring: func() *ring.Ring { return nil },
	})
	if _, err := Register(mp, part); err != nil {
		t.Fatal(err)
	}
	got := collect(t, reader)
	if _, ok := got["hot_cache_hits"]; ok {
		t.Error("hot_cache_hits registered without a hot cache")
	}
	if _, ok := got["ring_changes"]; ok {
		t.Error("ring_changes observed before the first ring")
	}
}

func TestRegister_ReturnsInstrumentErrorsAndUnregisters(t *testing.T) {
	_, mp := newReader()
	bad := errors.New("no such instrument")
	_, err := Register(mp, func(k *Kit) func(metric.Observer) {
		k.errs = append(k.errs, bad)
		return func(metric.Observer) {}
	})
	if !errors.Is(err, bad) {
		t.Fatalf("Register = %v, want %v", err, bad)
	}

	reader, mp := newReader()
	calls := 0
	reg, err := Register(mp, func(k *Kit) func(metric.Observer) {
		c := k.Counter("handover_dropped", "")
		return func(o metric.Observer) { calls++; o.ObserveInt64(c, 1) }
	})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, reader)
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	collect(t, reader)
	if calls != 1 {
		t.Errorf("observed %d times, want 1: the callback must not run after Unregister", calls)
	}
}

func TestLatency_RecordsSecondsInFixedBuckets(t *testing.T) {
	reader, mp := newReader()
	record, err := Latency(mp, ReplicationLatency)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Latency(mp, ForwardLatency); err != nil {
		t.Fatal(err)
	}
	record(3 * time.Millisecond)
	record(2 * time.Second)
	h := collect(t, reader)["replication_latency"]
	if h.Unit != "s" || h.Description != latencyDescriptions[ReplicationLatency] || h.Description == "" {
		t.Errorf("unit %q description %q", h.Unit, h.Description)
	}
	p := h.Data.(metricdata.Histogram[float64]).DataPoints[0]
	if p.Count != 2 || p.Sum != 2.003 {
		t.Errorf("count %d sum %v, want 2 and 2.003", p.Count, p.Sum)
	}
	if len(p.Bounds) != 14 || p.Bounds[0] != 0.0001 {
		t.Errorf("bounds %v", p.Bounds)
	}
}

func TestConnCounter_CountsOpenConnections(t *testing.T) {
	var c ConnCounter
	ctx := context.Background()
	c.HandleConn(ctx, &stats.ConnBegin{})
	c.HandleConn(ctx, &stats.ConnBegin{})
	c.HandleConn(ctx, &stats.ConnEnd{})
	if got := c.Open(); got != 1 {
		t.Errorf("Open = %d, want 1", got)
	}
}
