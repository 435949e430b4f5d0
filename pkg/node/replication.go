package node

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Replicated write-behind, the node's part: the replication latency
// histogram and other instruments, and a graceful leave that hands its
// pending records over when it cannot flush them.

// handoverAfter is how long a leaving node tries to flush its journal
// before it hands what is left to the nodes that take its partitions over.
const handoverAfter = 2 * time.Second

// replicationLatency returns the hook that records replication round trips
// in the replication_latency histogram, or nil without metrics.
func (n *Node) replicationLatency() func(time.Duration) {
	if n.cfg.Journal.Path == "" {
		return nil
	}
	return n.latencyHistogram("replication_latency", "Round trip of a write-behind replication frame: sent to a replica, fsync'd there, answered.")
}

// latencyHistogram returns a hook that records durations in the histogram
// name (seconds, 100 µs to 2.5 s), or nil without metrics.
func (n *Node) latencyHistogram(name, description string) func(time.Duration) {
	if n.cfg.MeterProvider == nil {
		return nil
	}
	h, err := n.cfg.MeterProvider.Meter(meterName).Float64Histogram(name, metric.WithUnit("s"),
		metric.WithDescription(description),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
	if err != nil {
		n.log.Warn("no latency histogram", "name", name, "err", err)
		return nil
	}
	return func(d time.Duration) { h.Record(context.Background(), d.Seconds()) }
}

// replicationInstruments creates the replication's observable instruments
// on m and returns them with the function that observes them.
func (n *Node) replicationInstruments(m metric.Meter) ([]metric.Observable, func(metric.Observer), error) {
	if n.journal == nil {
		return nil, func(metric.Observer) {}, nil
	}
	k := &meterKit{m: m}
	counter, gauge := k.counter, k.gauge
	backlog := gauge("replica_pending", "Copies of other nodes' pending write-behind records held here (the replica backlog).", "{record}")
	backlogBytes := gauge("replica_pending_bytes", "Bytes of the replica copies held here.", "By")
	inSync := gauge("replication_in_sync", "1 when every pending write-behind record has its replicas, 0 while re-replicating.", "")
	takeovers := counter("takeovers", "Departed nodes' journals whose copies this node took over.")
	takenOver := counter("taken_over", "Write-behind records this node adopted from departed nodes or handovers.")
	handed := counter("handed_over", "Write-behind records this node handed to other nodes.")
	under := counter("under_replicated_writes", "Write-behind writes acknowledged with fewer copies than write_behind.replicas.")
	replicated := counter("replicated", "Write-behind records acknowledged by replicas.")
	failures := counter("replication_failures", "Replication frames or connection attempts that failed.")
	if err := k.err(); err != nil {
		return nil, nil, err
	}
	insts := []metric.Observable{backlog, backlogBytes, inSync, takeovers, takenOver, handed, under, replicated, failures}
	return insts, func(o metric.Observer) {
		st := n.engine.ReplicationStats()
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
		if rs, err := n.journal.ReplicaCounts(); err == nil {
			o.ObserveInt64(backlog, int64(rs.Pending))
			o.ObserveInt64(backlogBytes, rs.Bytes)
		}
	}, nil
}

// flushFirst writes the journal to the database before the node announces
// its leave, for at most handoverAfter when other nodes could take the
// records over, else until ctx ends. It reports whether it emptied the
// journal.
func (n *Node) flushFirst(ctx context.Context) bool {
	if n.flusher == nil {
		return true
	}
	if r := n.engine.Ring(); r != nil && len(r.Members()) > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handoverAfter)
		defer cancel()
	}
	return n.flusher.Flush(ctx) == nil
}

// flushOrHandOver writes the journal to the database; when that has not
// worked within handoverAfter (the database is down), or at once when try
// is false, it hands the pending records to the nodes that own their
// partitions once this one is gone, then flushes what is left until ctx
// ends.
func (n *Node) flushOrHandOver(ctx context.Context, try bool) error {
	if n.flusher == nil {
		return nil
	}
	if try {
		fctx, cancel := context.WithTimeout(ctx, handoverAfter)
		err := n.flusher.Flush(fctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	handed, herr := n.engine.HandOver(ctx)
	if handed > 0 {
		n.log.Warn("the database could not be written; handed the pending write-behind records to the nodes that take this node's partitions", "records", handed)
	}
	if herr != nil {
		n.log.Warn("handover incomplete", "err", herr)
	}
	return n.flushJournal(ctx)
}

// settleDrops waits, briefly, until the replicas have been told what this
// node flushed, so they do not take those records over when it leaves.
func (n *Node) settleDrops(ctx context.Context) {
	if err := n.engine.SettleReplication(ctx); err != nil {
		n.log.Debug("replicas not all told of the last flushes before leaving", "err", fmt.Sprint(err))
	}
}
