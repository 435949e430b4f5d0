package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// span finds the span named name in spans.
func span(spans tracetest.SpanStubs, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

func attr(s tracetest.SpanStub, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestTracing_ForwardedGetIsOneTraceAcrossNodes(t *testing.T) {
	exps := []*tracetest.InMemoryExporter{tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()}
	var tps []*sdktrace.TracerProvider
	for _, e := range exps {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		tps = append(tps, tp)
	}
	c := clustertest.Start(t, 2, clustertest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.TracerProvider = tps[i]
	}})
	key := keyOwnedBy(t, c, clustertest.NSUsers, 1)
	c.DB.Put(key, []byte("secret-value"))
	for _, e := range exps {
		e.Reset() // drop the spans of cluster formation
	}
	resp, err := c.Cache(0).Get(ctxT(t), &pb.GetRequest{Namespace: clustertest.NSUsers, Key: key})
	if err != nil || !resp.Found {
		t.Fatalf("get: %v, %v", resp, err)
	}

	var entry, fwdClient, fwdServer, load tracetest.SpanStub
	clustertest.Eventually(t, 5*time.Second, func() error {
		s0, s1 := exps[0].GetSpans(), exps[1].GetSpans()
		var ok [4]bool
		entry, ok[0] = span(s0, "ringcache.v1.Cache/Get")
		fwdClient, ok[1] = span(s0, "ringcache.v1.Peer/Forward")
		fwdServer, ok[2] = span(s1, "ringcache.v1.Peer/Forward")
		load, ok[3] = span(s1, "ringcache.load")
		if ok != [4]bool{true, true, true, true} {
			return fmt.Errorf("spans so far: n1 %v, n2 %v", names(s0), names(s1))
		}
		return nil
	})
	tid := entry.SpanContext.TraceID()
	for _, s := range []tracetest.SpanStub{fwdClient, fwdServer, load} {
		if s.SpanContext.TraceID() != tid {
			t.Errorf("span %s is in trace %s, want %s", s.Name, s.SpanContext.TraceID(), tid)
		}
	}
	if entry.SpanKind != trace.SpanKindServer || fwdClient.SpanKind != trace.SpanKindClient || fwdServer.SpanKind != trace.SpanKindServer {
		t.Errorf("span kinds: entry %v, forward client %v, forward server %v", entry.SpanKind, fwdClient.SpanKind, fwdServer.SpanKind)
	}
	if fwdClient.Parent.SpanID() != entry.SpanContext.SpanID() {
		t.Error("the forward is not a child of the entry node's server span")
	}
	if fwdServer.Parent.SpanID() != fwdClient.SpanContext.SpanID() || !fwdServer.Parent.IsRemote() {
		t.Error("the owner's server span is not a remote child of the forward")
	}
	if load.Parent.SpanID() != fwdServer.SpanContext.SpanID() {
		t.Error("the load is not a child of the owner's server span")
	}
	if v, _ := attr(load, "ringcache.namespace"); v.AsString() != clustertest.NSUsers {
		t.Errorf("load span namespace %q", v.AsString())
	}
	if v, ok := attr(load, "ringcache.found"); !ok || !v.AsBool() {
		t.Errorf("load span found = %v (set: %v), want true", v.AsBool(), ok)
	}
	// Keys may be personal data, values always are: neither is on a span.
	for _, s := range append(exps[0].GetSpans(), exps[1].GetSpans()...) {
		for _, kv := range s.Attributes {
			if v := kv.Value.Emit(); v == key || v == "secret-value" {
				t.Errorf("span %s carries the key or value in %s", s.Name, kv.Key)
			}
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// A Pipeline stream is not one RPC worth a span (it lives as long as its
// client); the forwards and loads of its ops are still traced.
func TestTracing_PipelineStreamHasNoSpanOfItsOwn(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c := clustertest.Start(t, 1, clustertest.Options{Configure: func(_ int, cfg *node.Config) { cfg.TracerProvider = tp }})
	c.DB.Put("u1", []byte("alice"))
	exp.Reset()
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := c.Cache(0).Pipeline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(1, clustertest.NSUsers, "u1")}}); err != nil {
		t.Fatal(err)
	}
	if r := recvResults(t, stream, 1)[1]; string(r.Value) != "alice" {
		t.Fatalf("pipelined load: %v", r)
	}
	cancel() // end the stream: a span, if any, would end now
	if _, err := c.Cache(0).Get(ctxT(t), &pb.GetRequest{Namespace: clustertest.NSUsers, Key: "u1"}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error { // the unary Get's span marks the end
		if _, ok := span(exp.GetSpans(), "ringcache.v1.Cache/Get"); !ok {
			return fmt.Errorf("spans so far: %v", names(exp.GetSpans()))
		}
		return nil
	})
	spans := exp.GetSpans()
	if _, ok := span(spans, "ringcache.v1.Cache/Pipeline"); ok {
		t.Errorf("the Pipeline stream has a span: %v", names(spans))
	}
	if _, ok := span(spans, "ringcache.load"); !ok {
		t.Errorf("the pipelined miss's load was not traced: %v", names(spans))
	}
}
