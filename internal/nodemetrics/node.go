package nodemetrics

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// NodeSources are what Node reads on each collection.
type NodeSources struct {
	// Self is the node's name in the ring (ring_partitions).
	Self string
	// Namespaces are the configured namespaces, in the order of the
	// snapshot's Namespaces.
	Namespaces []string
	// Snapshot is the Admin Stats snapshot: the one place a namespace's
	// and the node's counters are mapped.
	Snapshot func() *pb.StatsResponse
	// OpenConns is the number of open gRPC connections (ConnCounter).
	OpenConns func() int64
	// Members counts the members by state.
	Members func() membership.Counts
	// Ring is the ring the node routes by; nil before the first.
	Ring func() *ring.Ring
	// HotCache registers the hot cache's instruments, read from the
	// snapshot's HotCache.
	HotCache bool
}

// nsCounters are the per-namespace counters, read from the snapshot.
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

// Node is the part of the namespaces' and the node's counters, the store,
// the members, the ring and, with src.HotCache, the hot cache.
func Node(src NodeSources) Part {
	return func(k *Kit) func(metric.Observer) {
		counter, gauge := k.Counter, k.Gauge
		perNS := make([]metric.Int64ObservableCounter, len(nsCounters))
		for i, c := range nsCounters {
			perNS[i] = counter(c.name, c.desc)
		}
		perNode := make([]metric.Int64ObservableCounter, len(nodeCounters))
		for i, c := range nodeCounters {
			perNode[i] = counter(c.name, c.desc)
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
		observeHot := func(*pb.HotCacheStats, metric.Observer) {}
		if src.HotCache {
			observeHot = hotCache(k)
		}

		// Attribute sets are built once, not per collection.
		nsAttrs := make([]metric.ObserveOption, len(src.Namespaces))
		for i, name := range src.Namespaces {
			nsAttrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("namespace", name)))
		}
		stateAttrs := map[membership.State]metric.ObserveOption{}
		for _, s := range []membership.State{membership.StateAlive, membership.StateDead, membership.StateLeft} {
			stateAttrs[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String("state", s.String())))
		}

		return func(o metric.Observer) {
			snap := src.Snapshot()
			for i, ns := range snap.Namespaces {
				if i >= len(nsAttrs) {
					break
				}
				for j, c := range nsCounters {
					o.ObserveInt64(perNS[j], int64(c.get(ns)), nsAttrs[i])
				}
				o.ObserveInt64(loadsWaiting, ns.LoadsWaiting, nsAttrs[i])
				o.ObserveInt64(loadsRunning, ns.LoadsRunning, nsAttrs[i])
			}
			for j, c := range nodeCounters {
				o.ObserveInt64(perNode[j], int64(c.get(snap)))
			}
			o.ObserveInt64(storeBytes, int64(snap.GetStore().GetBytes()))
			o.ObserveInt64(storeMax, int64(snap.GetStore().GetMaxBytes()))
			o.ObserveInt64(storeEntries, int64(snap.GetStore().GetEntries()))
			o.ObserveInt64(clients, src.OpenConns())
			mc := src.Members()
			for s, c := range map[membership.State]int{membership.StateAlive: mc.Alive, membership.StateDead: mc.Dead, membership.StateLeft: mc.Left} {
				o.ObserveInt64(members, int64(c), stateAttrs[s])
			}
			if r := src.Ring(); r != nil {
				// Versions count rebuilds: the first ring is version 1.
				o.ObserveInt64(ringChanges, int64(r.Version()-1))
				o.ObserveInt64(partitions, int64(r.Partitions(src.Self)))
			}
			observeHot(snap.HotCache, o)
		}
	}
}

// hotCache creates the hot cache's instruments and returns their observer.
func hotCache(k *Kit) func(*pb.HotCacheStats, metric.Observer) {
	counter, gauge := k.Counter, k.Gauge
	hits := counter("hot_cache_hits", "Gets of keys other nodes own answered from the hot cache, without a forward.")
	fills := counter("hot_cache_fills", "Owners' answers stored in the hot cache because their key was hot.")
	invals := counter("hot_cache_invalidations", "Keys the owners reported changed over their invalidation streams.")
	resets := counter("hot_cache_resets", "Wholesale drops of hot entries: an owner's stream broke or partitions moved.")
	bytes := gauge("hot_cache_bytes", "Bytes held by the hot cache.", "By")
	maxBytes := gauge("hot_cache_max_bytes", "Memory bound of the hot cache.", "By")
	entries := gauge("hot_cache_entries", "Entries in the hot cache (an estimate).", "{entry}")
	streams := gauge("hot_cache_streams", "Live invalidation streams to owners of hot entries.", "{stream}")
	return func(h *pb.HotCacheStats, o metric.Observer) {
		if h == nil {
			return
		}
		o.ObserveInt64(hits, int64(h.Hits))
		o.ObserveInt64(fills, int64(h.Fills))
		o.ObserveInt64(invals, int64(h.Invalidations))
		o.ObserveInt64(resets, int64(h.Resets))
		o.ObserveInt64(bytes, int64(h.Bytes))
		o.ObserveInt64(maxBytes, int64(h.MaxBytes))
		o.ObserveInt64(entries, int64(h.Entries))
		o.ObserveInt64(streams, int64(h.Streams))
	}
}
