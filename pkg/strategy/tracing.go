package strategy

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Spans of the backend work: a load of a missing key ("ringcache.load"), a
// write-through write ("ringcache.write") and a write-behind journal append
// ("ringcache.journal.append"). They carry the namespace, never a key or a
// value (keys may be personal data), nor an error's text, which may quote
// the key; error.type classifies a failure instead.
const (
	spanLoad   = "ringcache.load"
	spanWrite  = "ringcache.write"
	spanAppend = "ringcache.journal.append"
)

var (
	attrFound  = attribute.Key("ringcache.found")
	attrDelete = attribute.Key("ringcache.delete")
)

func (n *Namespace) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return n.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs, attribute.String("ringcache.namespace", n.p.Name))...))
}

func endSpan(span trace.Span, err error, attrs ...attribute.KeyValue) {
	if err != nil {
		kind := "backend"
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			kind = "timeout"
		case errors.Is(err, context.Canceled):
			kind = "canceled"
		case errors.Is(err, ErrRejected):
			kind = "rejected"
		case errors.Is(err, ErrBackpressure):
			kind = "journal_full"
		}
		attrs = append(attrs, attribute.String("error.type", kind))
		span.SetStatus(codes.Error, kind)
	}
	span.SetAttributes(attrs...)
	span.End()
}
