// Package telemetry builds a node's OpenTelemetry providers and its admin
// HTTP endpoints.
//
// Metrics are always on and are read in the Prometheus text format from
// Handler's /metrics, every name carrying the ringcache_ prefix, beside the
// Go runtime's go_* and process_* series. They live in
// a Prometheus registry of their own: nothing is registered with a global.
// Traces are exported over OTLP only when the standard OTEL_* environment
// asks for it; otherwise the tracer provider is a no-op and tracing costs
// next to nothing. Either way, the propagator is W3C trace-context, so a
// trace started by a client continues through the node and its peers.
//
// Telemetry never sees a cached value or key: instruments and spans carry
// namespaces, RPC methods and status codes only.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Namespace prefixes every metric name (ringcache_...).
const Namespace = "ringcache"

// ServiceName is the default service.name of traces; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override it.
const ServiceName = "ringcached"

// RPCDurationBuckets are the bucket bounds, in seconds, of the gRPC latency
// histograms. A cache answers in well under a millisecond, so they start at
// 100 µs rather than at otelgrpc's 5 ms.
var RPCDurationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Config configures Setup.
type Config struct {
	// Node is the node's name: the service.instance.id of its traces.
	Node string
	// Logger receives operator messages; nil discards them.
	Logger *slog.Logger
}

// Telemetry holds a node's providers. Create it with Setup and release it
// with Shutdown.
type Telemetry struct {
	registry       *prometheus.Registry
	meterProvider  *sdkmetric.MeterProvider
	tracerProvider trace.TracerProvider
	sdkTracer      *sdktrace.TracerProvider // nil when traces are off
	propagator     propagation.TextMapPropagator
	traceExport    string // "" when traces are off
}

// Setup builds the meter provider (Prometheus exporter on a registry of its
// own, namespace "ringcache", no otel_scope_* labels and no target_info) and
// the tracer provider (OTLP when OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_TRACES_EXPORTER=otlp is set,
// unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none; a no-op
// otherwise). The OTLP exporter reads the rest of its settings (headers,
// TLS, protocol, timeout) from the standard environment variables itself.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Telemetry{
		registry:       prometheus.NewRegistry(),
		tracerProvider: noop.NewTracerProvider(),
		propagator:     propagation.TraceContext{},
	}
	exp, err := otelprom.New(
		otelprom.WithRegisterer(t.registry),
		otelprom.WithNamespace(Namespace),
		otelprom.WithoutScopeInfo(),
		// Prometheus labels the target (job, instance) itself; target_info
		// would be the one series without the ringcache_ prefix.
		otelprom.WithoutTargetInfo(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	// The Go runtime's and the process's own series (go_*, process_*):
	// heap, GC, goroutines, RSS, open files.
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rpcBuckets := sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: RPCDurationBuckets}}
	t.meterProvider = sdkmetric.NewMeterProvider(
		sdkmetric.WithReader(exp),
		sdkmetric.WithView(
			sdkmetric.NewView(sdkmetric.Instrument{Name: "rpc.server.call.duration"}, rpcBuckets),
			sdkmetric.NewView(sdkmetric.Instrument{Name: "rpc.client.call.duration"}, rpcBuckets),
		),
	)

	kind, why := traceExporterKind(os.Getenv)
	if kind == "" {
		if why != "" {
			log.Info("traces off", "reason", why)
		}
		return t, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(ServiceName), semconv.ServiceInstanceID(cfg.Node)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && res == nil {
		_ = t.meterProvider.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	spans, err := newSpanExporter(ctx, kind)
	if err != nil {
		_ = t.meterProvider.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	// The sampler follows OTEL_TRACES_SAMPLER; by default it keeps every
	// trace whose caller sampled it, and every root trace.
	t.sdkTracer = sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithResource(res))
	t.tracerProvider = t.sdkTracer
	t.traceExport = kind
	log.Info("traces exported over OTLP", "protocol", kind, "reason", why)
	return t, nil
}

// traceExporterKind decides from the environment whether traces are
// exported, and how: "grpc", "http/protobuf", or "" for off, with the reason.
func traceExporterKind(getenv func(string) string) (kind, why string) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", "OTEL_SDK_DISABLED=true"
	}
	switch exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exporter {
	case "otlp":
		why = "OTEL_TRACES_EXPORTER=otlp"
	case "none":
		return "", "OTEL_TRACES_EXPORTER=none"
	case "":
		switch {
		case getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
			why = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set"
		case getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "":
			why = "OTEL_EXPORTER_OTLP_ENDPOINT is set"
		default:
			return "", "" // the usual case: nothing asked for traces
		}
	default:
		return "", fmt.Sprintf("OTEL_TRACES_EXPORTER=%s is not supported (use otlp or none)", exporter)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(strings.TrimSpace(proto)) {
	case "grpc":
		return "grpc", why
	case "", "http/protobuf":
		return "http/protobuf", why // the specification's default
	}
	return "", fmt.Sprintf("OTLP protocol %q is not supported (use grpc or http/protobuf)", proto)
}

// MeterProvider returns the provider whose instruments /metrics exposes.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// TracerProvider returns the OTLP-exporting provider, or a no-op one.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// Propagator returns the W3C trace-context propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// Registry returns the Prometheus registry behind /metrics.
func (t *Telemetry) Registry() *prometheus.Registry { return t.registry }

// TracesExported reports how traces leave the process: "grpc",
// "http/protobuf", or "" when they are off.
func (t *Telemetry) TracesExported() string { return t.traceExport }

// Shutdown flushes buffered spans and stops the providers; call it after
// the node has stopped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if t.sdkTracer != nil {
		errs = append(errs, t.sdkTracer.Shutdown(ctx))
	}
	errs = append(errs, t.meterProvider.Shutdown(ctx))
	return errors.Join(errs...)
}
