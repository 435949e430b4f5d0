package node

import (
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/connlimit"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/nodemetrics"
	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/pkg/ring"
)

// Metrics: internal/nodemetrics creates every instrument (its package doc
// lists them) and observes the sources handed to it here.

// registerMetrics registers the node's instruments on mp and the one
// callback that observes them. The returned registration is unregistered
// when the node shuts down, before the store and the journal go away.
func (n *Node) registerMetrics(mp metric.MeterProvider) (metric.Registration, error) {
	parts := []nodemetrics.Part{
		nodemetrics.Node(nodemetrics.NodeSources{
			Self: n.cfg.Name, Namespaces: n.engine.Names(), Snapshot: n.admin.Snapshot, OpenConns: n.obs.conns.Open,
			Members: func() membership.Counts { return n.members.Counts() }, Ring: func() *ring.Ring { return n.engine.Ring() },
			HotCache: n.hot != nil,
		}),
		nodemetrics.Limits(nodemetrics.LimitSources{
			Conns: func() connlimit.Stats { return n.conns.Stats() }, Hub: func() service.HubStats { return n.hub.Stats() },
			SendTimeouts: n.sec.guard.SendTimeouts, MaxConnections: n.cfg.MaxConnections,
		}),
		nodemetrics.Prewarm(n.PrewarmStats),
		nodemetrics.Warm(n.engine.WarmStats),
	}
	if n.journal != nil {
		src := nodemetrics.JournalSources{
			Stats: n.journal.Stats, Flusher: n.flusher.Stats, Replicas: n.journal.ReplicaCounts,
			Replication: n.engine.ReplicationStats, Now: n.now,
		}
		parts = append(parts, nodemetrics.Journal(src), nodemetrics.Replication(src))
	}
	return nodemetrics.Register(mp, parts...)
}

// replicationLatency returns the hook that records replication round trips
// in the replication_latency histogram, or nil without metrics.
func (n *Node) replicationLatency() func(time.Duration) {
	if n.cfg.Journal.Path == "" {
		return nil
	}
	return n.latency(nodemetrics.ReplicationLatency)
}

// latency returns the hook that records round trips in the latency
// histogram name (nodemetrics.Latency), or nil without metrics.
func (n *Node) latency(name string) func(time.Duration) {
	if n.cfg.MeterProvider == nil {
		return nil
	}
	record, err := nodemetrics.Latency(n.cfg.MeterProvider, name)
	if err != nil {
		n.log.Warn("no latency histogram", "name", name, "err", err)
		return nil
	}
	return record
}
