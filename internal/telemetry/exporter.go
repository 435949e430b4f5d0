package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newSpanExporter returns the OTLP span exporter for kind ("grpc" or
// "http/protobuf"). Both read endpoint, headers, TLS, compression and
// timeout from the OTEL_EXPORTER_OTLP_* environment; neither dials before
// the first export, so an absent collector does not stop the node.
func newSpanExporter(ctx context.Context, kind string) (sdktrace.SpanExporter, error) {
	if kind == "grpc" {
		return otlptracegrpc.New(ctx)
	}
	return otlptracehttp.New(ctx)
}
