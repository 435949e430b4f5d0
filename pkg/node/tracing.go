package node

import (
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/ringcache/ringcache/internal/nodemetrics"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Telemetry of the gRPC edge. otelgrpc stats handlers on the server and on
// the peer connections give every call a span, continue the caller's trace
// (W3C trace-context), and record the RPC latency histograms
// rpc.server.call.duration and rpc.client.call.duration (seconds, labelled
// rpc.method, rpc.system.name, rpc.response.status_code and, on failure,
// error.type; peers' client side also server.address and server.port).
// A forwarded Get is thus one trace: the client's span, the receiving
// node's server span, its client span to the owner, the owner's server span
// and, on a miss, the owner's "ringcache.load" span.

// observability is the node's telemetry state.
type observability struct {
	tracer trace.Tracer            // for the strategy's spans
	conns  nodemetrics.ConnCounter // open server connections
	reg    metric.Registration     // the metrics callback; nil without metrics
}

// tracerName is the instrumentation scope of the namespaces' spans.
const tracerName = "github.com/ringcache/ringcache/pkg/strategy"

// otelEnabled reports whether the caller gave the node any provider; without
// one the node installs no stats handler at all.
func (c Config) otelEnabled() bool { return c.MeterProvider != nil || c.TracerProvider != nil }

func (c Config) tracerProvider() trace.TracerProvider {
	if c.TracerProvider == nil {
		return tracenoop.NewTracerProvider()
	}
	return c.TracerProvider
}

func (c Config) otelgrpcOptions() []otelgrpc.Option {
	prop := c.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	opts := []otelgrpc.Option{
		otelgrpc.WithTracerProvider(c.tracerProvider()),
		otelgrpc.WithPropagators(prop),
		// Probes and reflection would drown the calls that matter. A
		// Pipeline stream lives as long as its client and carries many
		// calls: as one RPC its span and duration say nothing, and the
		// handler's per-message work lands on every pipelined call; the
		// node counts its frames and ops itself (ringcache_pipeline_*).
		// The same goes for the peers' forwarding streams: a sampled
		// forward goes unary (peer.Pool.Forward), so traces still span
		// nodes, and ringcache_forward_latency_seconds times every batch.
		otelgrpc.WithFilter(func(info *stats.RPCTagInfo) bool {
			return !strings.HasPrefix(info.FullMethodName, "/grpc.health.v1.") &&
				!strings.HasPrefix(info.FullMethodName, "/grpc.reflection.") &&
				info.FullMethodName != pb.Cache_Pipeline_FullMethodName &&
				info.FullMethodName != pb.Peer_ForwardStream_FullMethodName
		}),
	}
	if c.MeterProvider != nil {
		opts = append(opts, otelgrpc.WithMeterProvider(c.MeterProvider))
	} else {
		opts = append(opts, otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()))
	}
	return opts
}

// serverOptions are the telemetry options of the node's gRPC server.
func (n *Node) serverOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if n.cfg.otelEnabled() {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(n.cfg.otelgrpcOptions()...)))
	}
	if n.cfg.MeterProvider != nil {
		opts = append(opts, grpc.StatsHandler(&n.obs.conns))
	}
	return opts
}

// peerDialOptions are the telemetry options of the peer connections.
func (c Config) peerDialOptions() []grpc.DialOption {
	if !c.otelEnabled() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(c.otelgrpcOptions()...))}
}
