package nodemetrics

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/journal"
)

// JournalSources are what Journal and Replication read on each collection.
type JournalSources struct {
	// Stats are the journal's counts; an error (the journal is closing)
	// skips its gauges that time.
	Stats func() (journal.Stats, error)
	// Flusher are the flusher's counts.
	Flusher func() journal.FlusherStats
	// Replicas counts the copies of other nodes' records held here.
	Replicas func() (journal.ReplicaStats, error)
	// Replication are the engine's replication counts.
	Replication func() engine.ReplicationStats
	// Now is the clock the oldest pending record's age is taken by.
	Now func() time.Time
}

// Journal is the part of a write-behind journal and its flusher.
func Journal(src JournalSources) Part {
	return func(k *Kit) func(metric.Observer) {
		pending := k.Gauge("journal_pending", "Write-behind records not yet in the database.", "{record}")
		bytes := k.Gauge("journal_pending_bytes", "Bytes of the pending write-behind records.", "By")
		maxPending := k.Gauge("journal_max_pending", "Bound on pending write-behind records; past it Sets get RESOURCE_EXHAUSTED.", "{record}")
		dead := k.Gauge("journal_dead_letters", "Write-behind records the database rejected for good.", "{record}")
		flushed := k.Counter("journal_flushed", "Write-behind records written to the database.")
		flushErrors := k.Counter("journal_flush_errors", "Database batches or writes of the flusher that failed.")
		age := k.FloatGauge("journal_oldest_pending_age", "Age of the oldest pending write-behind record; 0 when none.", "s")
		return func(o metric.Observer) {
			fs := src.Flusher()
			o.ObserveInt64(flushed, int64(fs.Flushed))
			o.ObserveInt64(flushErrors, int64(fs.Failures))
			js, err := src.Stats()
			if err != nil {
				return // the journal is closing; skip its gauges this time
			}
			o.ObserveInt64(pending, int64(js.Pending))
			o.ObserveInt64(bytes, js.PendingBytes)
			o.ObserveInt64(maxPending, int64(js.MaxPending))
			o.ObserveInt64(dead, int64(js.DeadLetters))
			a := 0.0
			if !js.Oldest.IsZero() {
				a = max(0, src.Now().Sub(js.Oldest).Seconds())
			}
			o.ObserveFloat64(age, a)
		}
	}
}

// Replication is the part of the replicated write-behind journal.
func Replication(src JournalSources) Part {
	return func(k *Kit) func(metric.Observer) {
		counter, gauge := k.Counter, k.Gauge
		backlog := gauge("replica_pending", "Copies of other nodes' pending write-behind records held here (the replica backlog).", "{record}")
		backlogBytes := gauge("replica_pending_bytes", "Bytes of the replica copies held here.", "By")
		inSync := gauge("replication_in_sync", "1 when every pending write-behind record has its replicas, 0 while re-replicating.", "")
		takeovers := counter("takeovers", "Departed nodes' journals whose copies this node took over.")
		takenOver := counter("taken_over", "Write-behind records this node adopted from departed nodes or handovers.")
		handed := counter("handed_over", "Write-behind records this node handed to other nodes.")
		under := counter("under_replicated_writes", "Write-behind writes acknowledged with fewer copies than write_behind.replicas.")
		replicated := counter("replicated", "Write-behind records acknowledged by replicas.")
		failures := counter("replication_failures", "Replication frames or connection attempts that failed.")
		return func(o metric.Observer) {
			st := src.Replication()
			o.ObserveInt64(takeovers, int64(st.Takeovers))
			o.ObserveInt64(takenOver, int64(st.TakenOver))
			o.ObserveInt64(handed, int64(st.HandedOver))
			o.ObserveInt64(under, int64(st.UnderReplicated))
			o.ObserveInt64(replicated, int64(st.Links.Stored))
			o.ObserveInt64(failures, int64(st.Links.FailedFrames))
			sync := int64(0)
			if st.InSync {
				sync = 1
			}
			o.ObserveInt64(inSync, sync)
			if rs, err := src.Replicas(); err == nil {
				o.ObserveInt64(backlog, int64(rs.Pending))
				o.ObserveInt64(backlogBytes, rs.Bytes)
			}
		}
	}
}

// Latency histograms (seconds, 100 µs to 2.5 s) and their descriptions.
const (
	ReplicationLatency = "replication_latency"
	ForwardLatency     = "forward_latency"
)

var latencyDescriptions = map[string]string{
	ReplicationLatency: "Round trip of a write-behind replication frame: sent to a replica, fsync'd there, answered.",
	ForwardLatency:     "Round trip of a batch forwarded to its owner: sent, served there, answered.",
}

// Latency creates the latency histogram name (ReplicationLatency,
// ForwardLatency) on mp and returns the hook that records a round trip in
// it.
func Latency(mp metric.MeterProvider, name string) (func(time.Duration), error) {
	h, err := mp.Meter(Scope).Float64Histogram(name, metric.WithUnit("s"),
		metric.WithDescription(latencyDescriptions[name]),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
	if err != nil {
		return nil, err
	}
	return func(d time.Duration) { h.Record(context.Background(), d.Seconds()) }, nil
}
