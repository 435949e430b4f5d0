// Package nodemetrics registers a node's OpenTelemetry instruments. pkg/node
// hands it the sources (functions that return the counters the node keeps
// anyway: the Admin Stats snapshot, the journal's and the engine's stats)
// as Parts, and Register creates every instrument and one callback that
// observes them all. Every instrument but replication_latency is
// observable, so the request path does no extra work for metrics.
//
// The names below are OTel instrument names; a Prometheus exporter with
// namespace "ringcache" adds the prefix and its suffixes (_total for
// counters, _bytes for unit By, _seconds for unit s): gets →
// ringcache_gets_total. deploy/ alert rules and docs/operations.md use
// them: keep every name, unit, description and label.
//
// Per namespace, labelled namespace (Node):
//
//	gets, hits, misses, negative_hits, backend_loads,
//	backend_loads_deduplicated, backend_load_errors, sets, deletes,
//	write_errors, backpressure, refreshes, refreshes_skipped,
//	xfetch_refreshes, flushes,
//	pending_hits, leases_granted, lease_waits, lease_rejected,
//	backend_loads_refused                                  (counters)
//	loads_waiting, backend_loads_running                   (gauges)
//
// Per node (Node):
//
//	forwards, forward_errors, forwarded_in, pipeline_frames,
//	pipeline_ops, pipeline_waits, clock_rejections, store_evictions,
//	ring_changes                                          (counters)
//	store_bytes, store_max_bytes, store_entries, connected_clients,
//	members{state}, ring_partitions                       (gauges)
//
// With the hot cache enabled (Node, HotCache):
//
//	hot_cache_hits, hot_cache_fills, hot_cache_invalidations,
//	hot_cache_resets                                       (counters)
//	hot_cache_bytes, hot_cache_max_bytes, hot_cache_entries,
//	hot_cache_streams                                      (gauges)
//
// With a write-behind journal (Journal):
//
//	journal_flushed, journal_flush_errors                 (counters)
//	journal_pending, journal_pending_bytes, journal_max_pending,
//	journal_oldest_pending_age, journal_dead_letters      (gauges)
//
// With a write-behind journal, replication (Replication, ReplicationLatency):
//
//	replication_latency                                   (histogram, s)
//	takeovers, taken_over, handed_over,
//	under_replicated_writes, replicated,
//	replication_failures                                  (counters)
//	replica_pending, replica_pending_bytes,
//	replication_in_sync                                   (gauges)
//
// Bounds on connections and streams (Limits):
//
//	connections{kind=client|peer}, connection_limit,
//	watch_subscribers, watch_backlog                      (gauges)
//	connections_refused, accept_errors, connections_struck,
//	watch_refused, watch_dropped, stream_send_timeouts   (counters)
//
// Pre-warm after a restart (Prewarm):
//
//	prewarm_keys{outcome}                                 (counter)
//
// The warm hand-over (Warm):
//
//	handover_entries_in, handover_bytes_in,
//	handover_entries_out, handover_bytes_out,
//	handover_misses_served, handover_lookups_served,
//	handover_dropped                                      (counters)
//	handover_held_bytes                                   (gauge)
package nodemetrics

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// Scope is the instrumentation scope of the node's instruments. It names
// pkg/node, where they were first registered, and stays so: exporters that
// keep the scope (OTLP) would otherwise report new series.
const Scope = "github.com/ringcache/ringcache/pkg/node"

// A Part creates a group of instruments with k and returns the function
// that observes them on each collection. It reads its sources only there.
type Part func(k *Kit) (observe func(metric.Observer))

// Kit creates observable instruments on one meter, keeping them for the
// callback and their errors for Register, so that a Part reads as the
// list of its instruments.
type Kit struct {
	m     metric.Meter
	insts []metric.Observable
	errs  []error
}

// Counter creates an int64 observable counter.
func (k *Kit) Counter(name, desc string) metric.Int64ObservableCounter {
	c, err := k.m.Int64ObservableCounter(name, metric.WithDescription(desc))
	k.keep(c, err)
	return c
}

// Gauge creates an int64 observable gauge of unit unit.
func (k *Kit) Gauge(name, desc, unit string) metric.Int64ObservableGauge {
	g, err := k.m.Int64ObservableGauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	k.keep(g, err)
	return g
}

// FloatGauge creates a float64 observable gauge of unit unit.
func (k *Kit) FloatGauge(name, desc, unit string) metric.Float64ObservableGauge {
	g, err := k.m.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	k.keep(g, err)
	return g
}

func (k *Kit) keep(inst metric.Observable, err error) {
	if err != nil {
		k.errs = append(k.errs, err)
		return
	}
	k.insts = append(k.insts, inst)
}

// Register creates the instruments of parts on mp's meter for Scope and
// one callback that observes them all; nil parts are skipped. Unregister
// the result before the sources go away (the node does so first at Close).
func Register(mp metric.MeterProvider, parts ...Part) (metric.Registration, error) {
	k := &Kit{m: mp.Meter(Scope)}
	var observers []func(metric.Observer)
	for _, p := range parts {
		if p != nil {
			observers = append(observers, p(k))
		}
	}
	if err := errors.Join(k.errs...); err != nil {
		return nil, err
	}
	return k.m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, observe := range observers {
			observe(o)
		}
		return nil
	}, k.insts...)
}
