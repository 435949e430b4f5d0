package node

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc/stats"

	"github.com/ringcache/ringcache/internal/membership"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Metrics. Every instrument is observable: a scrape reads the counters the
// node keeps anyway (the ones the Admin Stats and Journal RPCs return), so
// the request path does no extra work for them. The names below are OTel
// instrument names; a Prometheus exporter with namespace "ringcache" adds
// the prefix and its suffixes (_total for counters, _bytes for unit By,
// _seconds for unit s): gets → ringcache_gets_total.
//
// Per namespace, labelled namespace:
//
//	gets, hits, misses, negative_hits, backend_loads,
//	backend_loads_deduplicated, backend_load_errors, sets, deletes,
//	write_errors, backpressure, refreshes, refreshes_skipped,
//	xfetch_refreshes, flushes,
//	pending_hits, leases_granted, lease_waits, lease_rejected,
//	backend_loads_refused                                  (counters)
//	loads_waiting, backend_loads_running                   (gauges)
//
// Per node:
//
//	forwards, forward_errors, forwarded_in, pipeline_frames,
//	pipeline_ops, pipeline_waits, clock_rejections, store_evictions,
//	ring_changes, journal_flushed, journal_flush_errors   (counters)
//	store_bytes, store_max_bytes, store_entries, connected_clients,
//	members{state}, ring_partitions, journal_pending,
//	journal_pending_bytes, journal_max_pending,
//	journal_oldest_pending_age, journal_dead_letters      (gauges)
//
// With a write-behind journal, replication (replication.go):
//
//	replication_latency                                   (histogram, s)
//	takeovers, taken_over, handed_over,
//	under_replicated_writes, replicated,
//	replication_failures                                  (counters)
//	replica_pending, replica_pending_bytes,
//	replication_in_sync                                   (gauges)
//
// Warm hand-over of cached entries when partitions change owner (warm.go):
//
//	handover_entries_in, handover_bytes_in,
//	handover_entries_out, handover_bytes_out,
//	handover_misses_served, handover_lookups_served,
//	handover_dropped                                      (counters)
//	handover_held_bytes                                   (gauge)
//
// With the hot cache enabled, per node:
//
//	hot_cache_hits, hot_cache_fills, hot_cache_invalidations,
//	hot_cache_resets                                       (counters)
//	hot_cache_bytes, hot_cache_max_bytes, hot_cache_entries,
//	hot_cache_streams                                      (gauges)
//
// The journal instruments are reported only by a node with a write-behind
// journal, the hot cache's only by a node with a hot cache.

// meterName is the instrumentation scope of the node's instruments.
const meterName = "github.com/ringcache/ringcache/pkg/node"

// nsCounters are the per-namespace counters, read from the Admin Stats
// snapshot (the one place a namespace's counters are mapped).
var nsCounters = []struct {
	name, desc string
	get        func(*pb.NamespaceStats) uint64
}{
	{"gets", "Get calls served by this node as the key's owner.", (*pb.NamespaceStats).GetGets},
	{"hits", "Gets answered from the local store, negative entries included.", (*pb.NamespaceStats).GetHits},
	{"misses", "Gets that found no entry in the local store.", (*pb.NamespaceStats).GetMisses},
	{"negative_hits", "Gets answered by a cached not-found.", (*pb.NamespaceStats).GetNegativeHits},
	{"backend_loads", "Loads from the backend (one per key at a time).", (*pb.NamespaceStats).GetLoads},
	{"backend_loads_deduplicated", "Gets that waited on another caller's load instead of loading.", (*pb.NamespaceStats).GetLoadsDeduplicated},
	{"backend_load_errors", "Backend loads that failed.", (*pb.NamespaceStats).GetLoadErrors},
	{"sets", "Set calls served as the key's owner.", (*pb.NamespaceStats).GetSets},
	{"deletes", "Delete calls served as the key's owner.", (*pb.NamespaceStats).GetDeletes},
	{"write_errors", "Write-through or journal writes that failed.", (*pb.NamespaceStats).GetWriteErrors},
	{"backpressure", "Writes refused because the write-behind journal was full.", (*pb.NamespaceStats).GetBackpressure},
	{"refreshes", "Background refresh-ahead loads started.", (*pb.NamespaceStats).GetRefreshes},
	{"refreshes_skipped", "Refresh-ahead reloads not started because the namespace's bound on concurrent refreshes was reached.", (*pb.NamespaceStats).GetRefreshesSkipped},
	{"xfetch_refreshes", "Of refreshes, those XFetch (refresh: xfetch) started shortly before expiry.", (*pb.NamespaceStats).GetXfetchRefreshes},
	{"flushes", "Namespace or prefix flushes (ringcachectl flush) applied on this node.", (*pb.NamespaceStats).GetFlushes},
	{"pending_hits", "Misses answered from a pending write-behind write.", (*pb.NamespaceStats).GetPendingHits},
	{"leases_granted", "Cache-aside misses answered with a lease to load.", (*pb.NamespaceStats).GetLeasesGranted},
	{"lease_waits", "Cache-aside misses told to wait for another caller's lease.", (*pb.NamespaceStats).GetLeaseWaits},
	{"lease_rejected", "Leased Sets refused because the lease was spent.", (*pb.NamespaceStats).GetLeaseRejected},
	{"backend_loads_refused", "Misses refused (RESOURCE_EXHAUSTED) because max_concurrent_loads loads were in flight.", (*pb.NamespaceStats).GetLoadsRefused},
}

// nodeCounters are the node's counters in the same snapshot.
var nodeCounters = []struct {
	name, desc string
	get        func(*pb.StatsResponse) uint64
}{
	{"forwards", "Ops this node forwarded to the key's owner.", (*pb.StatsResponse).GetForwards},
	{"forward_errors", "Forwarded ops that failed to reach their owner.", (*pb.StatsResponse).GetForwardErrors},
	{"forwarded_in", "Ops forwarded to this node by a peer.", (*pb.StatsResponse).GetForwardedIn},
	{"pipeline_frames", "Cache.Pipeline request frames read.", (*pb.StatsResponse).GetPipelineFrames},
	{"pipeline_ops", "Ops read from Cache.Pipeline frames.", (*pb.StatsResponse).GetPipelineOps},
	{"pipeline_waits", "Pipeline ops that waited (a load, a forward, a database or journal write) instead of being answered from memory.", (*pb.StatsResponse).GetPipelineWaits},
	{"clock_rejections", "Peer clock values refused because they were too far ahead of this node's wall clock.", (*pb.StatsResponse).GetClockRejections},
	{"store_evictions", "Entries evicted from the local store for room.", func(s *pb.StatsResponse) uint64 { return s.GetStore().GetEvictions() }},
}

// meterKit creates observable instruments on one meter and keeps their
// errors, so that registering reads as the list of instruments.
type meterKit struct {
	m    metric.Meter
	errs []error
}

func (k *meterKit) counter(name, desc string) metric.Int64ObservableCounter {
	c, err := k.m.Int64ObservableCounter(name, metric.WithDescription(desc))
	k.errs = append(k.errs, err)
	return c
}

func (k *meterKit) gauge(name, desc, unit string) metric.Int64ObservableGauge {
	g, err := k.m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	k.errs = append(k.errs, err)
	return g
}

func (k *meterKit) err() error { return errors.Join(k.errs...) }

// registerMetrics creates the node's instruments on mp and the one callback
// that observes them all. The returned registration is unregistered when the
// node shuts down, before the store and the journal go away.
func (n *Node) registerMetrics(mp metric.MeterProvider) (metric.Registration, error) {
	m := mp.Meter(meterName)
	k := &meterKit{m: m}
	counter, gauge := k.counter, k.gauge
	var insts []metric.Observable
	perNS := make([]metric.Int64ObservableCounter, len(nsCounters))
	for i, c := range nsCounters {
		perNS[i] = counter(c.name, c.desc)
		insts = append(insts, perNS[i])
	}
	perNode := make([]metric.Int64ObservableCounter, len(nodeCounters))
	for i, c := range nodeCounters {
		perNode[i] = counter(c.name, c.desc)
		insts = append(insts, perNode[i])
	}
	loadsWaiting := gauge("loads_waiting", "Callers waiting on a backend load right now.", "{caller}")
	loadsRunning := gauge("backend_loads_running", "Backend loads in flight right now.", "{load}")
	storeBytes := gauge("store_bytes", "Bytes held by the local store.", "By")
	storeMax := gauge("store_max_bytes", "Memory bound of the local store.", "By")
	storeEntries := gauge("store_entries", "Entries in the local store (an estimate).", "{entry}")
	clients := gauge("connected_clients", "Open gRPC connections to this node, peers' included.", "{connection}")
	members := gauge("members", "Cluster members as this node sees them, by state.", "{member}")
	ringChanges := counter("ring_changes", "Rebuilds of the hash ring after membership changes.")
	partitions := gauge("ring_partitions", "Ring partitions this node owns.", "{partition}")
	insts = append(insts, loadsWaiting, loadsRunning, storeBytes, storeMax, storeEntries, clients, members, ringChanges, partitions)

	var hHits, hFills, hInvals, hResets metric.Int64ObservableCounter
	var hBytes, hMax, hEntries, hStreams metric.Int64ObservableGauge
	if n.hot != nil {
		hHits = counter("hot_cache_hits", "Gets of keys other nodes own answered from the hot cache, without a forward.")
		hFills = counter("hot_cache_fills", "Owners' answers stored in the hot cache because their key was hot.")
		hInvals = counter("hot_cache_invalidations", "Keys the owners reported changed over their invalidation streams.")
		hResets = counter("hot_cache_resets", "Wholesale drops of hot entries: an owner's stream broke or partitions moved.")
		hBytes = gauge("hot_cache_bytes", "Bytes held by the hot cache.", "By")
		hMax = gauge("hot_cache_max_bytes", "Memory bound of the hot cache.", "By")
		hEntries = gauge("hot_cache_entries", "Entries in the hot cache (an estimate).", "{entry}")
		hStreams = gauge("hot_cache_streams", "Live invalidation streams to owners of hot entries.", "{stream}")
		insts = append(insts, hHits, hFills, hInvals, hResets, hBytes, hMax, hEntries, hStreams)
	}

	var jPending, jBytes, jMax, jDead metric.Int64ObservableGauge
	var jFlushed, jFlushErrors metric.Int64ObservableCounter
	var jAge metric.Float64ObservableGauge
	if n.journal != nil {
		jPending = gauge("journal_pending", "Write-behind records not yet in the database.", "{record}")
		jBytes = gauge("journal_pending_bytes", "Bytes of the pending write-behind records.", "By")
		jMax = gauge("journal_max_pending", "Bound on pending write-behind records; past it Sets get RESOURCE_EXHAUSTED.", "{record}")
		jDead = gauge("journal_dead_letters", "Write-behind records the database rejected for good.", "{record}")
		jFlushed = counter("journal_flushed", "Write-behind records written to the database.")
		jFlushErrors = counter("journal_flush_errors", "Database batches or writes of the flusher that failed.")
		age, err := m.Float64ObservableGauge("journal_oldest_pending_age", metric.WithUnit("s"),
			metric.WithDescription("Age of the oldest pending write-behind record; 0 when none."))
		k.errs = append(k.errs, err)
		jAge = age
		insts = append(insts, jPending, jBytes, jMax, jDead, jFlushed, jFlushErrors, jAge)
	}
	replInsts, observeRepl, err := n.replicationInstruments(m) // replication.go
	k.errs = append(k.errs, err)
	insts = append(insts, replInsts...)
	warmInsts, observeWarm, err := n.warmInstruments(m) // warm.go
	k.errs = append(k.errs, err)
	insts = append(insts, warmInsts...)
	if err := k.err(); err != nil {
		return nil, err
	}

	// Attribute sets are built once, not per scrape.
	names := n.engine.Names()
	nsAttrs := make([]metric.ObserveOption, len(names))
	for i, name := range names {
		nsAttrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("namespace", name)))
	}
	stateAttrs := map[membership.State]metric.ObserveOption{}
	for _, s := range []membership.State{membership.StateAlive, membership.StateDead, membership.StateLeft} {
		stateAttrs[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String("state", s.String())))
	}

	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		snap := n.admin.Snapshot()
		for i, ns := range snap.Namespaces {
			for j, c := range nsCounters {
				o.ObserveInt64(perNS[j], int64(c.get(ns)), nsAttrs[i])
			}
			o.ObserveInt64(loadsWaiting, ns.LoadsWaiting, nsAttrs[i])
			o.ObserveInt64(loadsRunning, ns.LoadsRunning, nsAttrs[i])
		}
		for j, c := range nodeCounters {
			o.ObserveInt64(perNode[j], int64(c.get(snap)))
		}
		o.ObserveInt64(storeBytes, int64(snap.Store.Bytes))
		o.ObserveInt64(storeMax, int64(snap.Store.MaxBytes))
		o.ObserveInt64(storeEntries, int64(snap.Store.Entries))
		o.ObserveInt64(clients, n.obs.conns.open.Load())
		mc := n.members.Counts()
		for s, c := range map[membership.State]int{membership.StateAlive: mc.Alive, membership.StateDead: mc.Dead, membership.StateLeft: mc.Left} {
			o.ObserveInt64(members, int64(c), stateAttrs[s])
		}
		if r := n.engine.Ring(); r != nil {
			// Versions count rebuilds: the first ring is version 1.
			o.ObserveInt64(ringChanges, int64(r.Version()-1))
			o.ObserveInt64(partitions, int64(r.Partitions(n.cfg.Name)))
		}
		observeWarm(o)
		if h := snap.HotCache; h != nil {
			o.ObserveInt64(hHits, int64(h.Hits))
			o.ObserveInt64(hFills, int64(h.Fills))
			o.ObserveInt64(hInvals, int64(h.Invalidations))
			o.ObserveInt64(hResets, int64(h.Resets))
			o.ObserveInt64(hBytes, int64(h.Bytes))
			o.ObserveInt64(hMax, int64(h.MaxBytes))
			o.ObserveInt64(hEntries, int64(h.Entries))
			o.ObserveInt64(hStreams, int64(h.Streams))
		}
		if n.journal == nil {
			return nil
		}
		observeRepl(o)
		fs := n.flusher.Stats()
		o.ObserveInt64(jFlushed, int64(fs.Flushed))
		o.ObserveInt64(jFlushErrors, int64(fs.Failures))
		js, err := n.journal.Stats()
		if err != nil {
			return nil // the journal is closing; skip its gauges this time
		}
		o.ObserveInt64(jPending, int64(js.Pending))
		o.ObserveInt64(jBytes, js.PendingBytes)
		o.ObserveInt64(jMax, int64(js.MaxPending))
		o.ObserveInt64(jDead, int64(js.DeadLetters))
		age := 0.0
		if !js.Oldest.IsZero() {
			age = max(0, n.now().Sub(js.Oldest).Seconds())
		}
		o.ObserveFloat64(jAge, age)
		return nil
	}, insts...)
}

// connCounter is a gRPC stats.Handler that counts the server's open
// connections: one atomic add per connection, nothing per call.
type connCounter struct{ open atomic.Int64 }

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.open.Add(1)
	case *stats.ConnEnd:
		c.open.Add(-1)
	}
}
