package nodemetrics

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/connlimit"
	"github.com/ringcache/ringcache/internal/service"
)

// LimitSources are what Limits reads on each collection.
type LimitSources struct {
	// Conns are the bounded listener's counts.
	Conns func() connlimit.Stats
	// Hub are the invalidation fan-out's counts.
	Hub func() service.HubStats
	// SendTimeouts counts streams ended by the send timeout.
	SendTimeouts func() uint64
	// MaxConnections is the client connection bound (0: none).
	MaxConnections int
}

// Limits is the part of the bounds on connections and streams.
func Limits(src LimitSources) Part {
	return func(k *Kit) func(metric.Observer) {
		counter, gauge := k.Counter, k.Gauge
		conns := gauge("connections", "Open gRPC connections admitted by the connection limit, by kind: client, or peer (from a member's host).", "{connection}")
		limit := gauge("connection_limit", "Bound on client connections (0: none); peers have PeerConnections more.", "{connection}")
		refused := counter("connections_refused", "Connections closed as soon as accepted, over the connection limit or shed while out of file descriptors.")
		acceptErrs := counter("accept_errors", "Accepts that failed for want of file descriptors (EMFILE, ENFILE).")
		struck := counter("connections_struck", "Connections closed because their client left several streams unread past the send timeout.")
		subs := gauge("watch_subscribers", "Open WatchInvalidations subscriptions, peers' included.", "{subscriber}")
		backlog := gauge("watch_backlog", "Bytes of changes kept for invalidation subscribers that have not sent them yet.", "By")
		wRefused := counter("watch_refused", "WatchInvalidations subscriptions refused because the node had its most subscribers.")
		wDropped := counter("watch_dropped", "WatchInvalidations subscribers dropped because they fell further behind than the backlog holds.")
		timeouts := counter("stream_send_timeouts", "Streams ended because a send waited the send timeout for its client to read.")
		client := metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "client")))
		peer := metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "peer")))
		return func(o metric.Observer) {
			cs, hs := src.Conns(), src.Hub()
			o.ObserveInt64(conns, cs.Clients, client)
			o.ObserveInt64(conns, cs.Peers, peer)
			o.ObserveInt64(limit, int64(max(0, src.MaxConnections)))
			o.ObserveInt64(refused, int64(cs.Refused))
			o.ObserveInt64(acceptErrs, int64(cs.AcceptErrors))
			o.ObserveInt64(struck, int64(cs.Struck))
			o.ObserveInt64(subs, hs.Subscribers)
			o.ObserveInt64(backlog, hs.BacklogBytes)
			o.ObserveInt64(wRefused, int64(hs.Refused))
			o.ObserveInt64(wDropped, int64(hs.Dropped))
			o.ObserveInt64(timeouts, int64(src.SendTimeouts()))
		}
	}
}
