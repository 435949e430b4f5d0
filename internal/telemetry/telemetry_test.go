package telemetry_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/telemetry"
	"github.com/ringcache/ringcache/internal/telemetry/telemetrytest"
)

// otelEnv are the variables Setup and the OTLP exporters read.
var otelEnv = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
}

// setEnv clears the OTEL_* environment of the test, then sets kv (pairs).
// deadEndpoint is a loopback port nothing listens on.
const deadEndpoint = "http://127.0.0.1:1"

func setEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

func setup(t *testing.T, kv ...string) *telemetry.Telemetry {
	t.Helper()
	setEnv(t, kv...)
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Node: "n1", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return tel
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestHandler_HealthzAndReadyzFollowReady(t *testing.T) {
	tel := setup(t)
	var ready atomic.Bool
	h := tel.Handler(telemetry.HandlerOptions{Ready: func() error {
		if ready.Load() {
			return nil
		}
		return errors.New("joining its cluster")
	}})
	if code, body := get(t, h, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "not ready: joining its cluster") {
		t.Errorf("/readyz before ready = %d %q, want 503 with a reason", code, body)
	}
	ready.Store(true)
	if code, _ := get(t, h, "/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d, want 200", code)
	}
	ready.Store(false) // draining
	if code, _ := get(t, h, "/readyz"); code != 503 {
		t.Errorf("/readyz while draining = %d, want 503", code)
	}
	if code, _ := get(t, h, "/nope"); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
	if code, _ := get(t, tel.Handler(telemetry.HandlerOptions{}), "/readyz"); code != 503 {
		t.Errorf("/readyz without a ready func = %d, want 503", code)
	}
	if code, _ := get(t, h, "/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without Pprof = %d, want 404", code)
	}
	if code, _ := get(t, tel.Handler(telemetry.HandlerOptions{Pprof: true}), "/debug/pprof/"); code != 200 {
		t.Errorf("/debug/pprof/ with Pprof = %d, want 200", code)
	}
}

func TestMetrics_NamesCarryPrefixAndUnitSuffixes(t *testing.T) {
	tel := setup(t)
	m := tel.MeterProvider().Meter("test")
	c, err := m.Int64Counter("dummy", metric.WithDescription("a dummy counter"))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 3, metric.WithAttributes(attribute.String("namespace", "users")))
	c.Add(context.Background(), 4, metric.WithAttributes(attribute.String("namespace", "cache")))
	_, err = m.Int64ObservableGauge("store.bytes", metric.WithUnit("By"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error { o.Observe(42); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Float64ObservableGauge("age", metric.WithUnit("s"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error { o.Observe(1.5); return nil }))
	if err != nil {
		t.Fatal(err)
	}

	fams, err := telemetrytest.ScrapeHandler(tel.Handler(telemetry.HandlerOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fams.Sum("ringcache_dummy_total", "namespace", "users"); got != 3 {
		t.Errorf("ringcache_dummy_total{namespace=users} = %v, want 3", got)
	}
	if got, _ := fams.Sum("ringcache_dummy_total"); got != 7 {
		t.Errorf("sum of ringcache_dummy_total = %v, want 7", got)
	}
	if typ := fams.Type("ringcache_dummy_total"); typ != "counter" {
		t.Errorf("ringcache_dummy_total is a %s", typ)
	}
	if got, _ := fams.Sum("ringcache_store_bytes"); got != 42 {
		t.Errorf("ringcache_store_bytes = %v, want 42 (unit By must not double the suffix); families %v", got, fams.Names())
	}
	if got, _ := fams.Sum("ringcache_age_seconds"); got != 1.5 {
		t.Errorf("ringcache_age_seconds = %v, want 1.5; families %v", got, fams.Names())
	}
	for _, name := range fams.Names() {
		if !strings.HasPrefix(name, "ringcache_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("family %s lacks the ringcache_ prefix (only the Go runtime's go_* and process_* series may)", name)
		}
	}
	if got, _ := fams.Sum("go_goroutines"); got < 1 {
		t.Errorf("go_goroutines = %v: the Go collector is missing", got)
	}
	if labels := fams.LabelNames("ringcache_dummy_total"); !slices.Equal(labels, []string{"namespace"}) {
		t.Errorf("labels %v, want just namespace (no otel_scope_*)", labels)
	}
}

func TestSetup_TracesOnlyWhenTheEnvironmentAsks(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"nothing set", nil, ""},
		{"endpoint", []string{"OTEL_EXPORTER_OTLP_ENDPOINT", deadEndpoint}, "http/protobuf"},
		{"traces endpoint, grpc", []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", deadEndpoint, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}, "grpc"},
		{"exporter otlp", []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT", deadEndpoint}, "grpc"},
		{"exporter none wins over endpoint", []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", deadEndpoint}, ""},
		{"sdk disabled", []string{"OTEL_SDK_DISABLED", "true", "OTEL_TRACES_EXPORTER", "otlp"}, ""},
		{"unsupported exporter", []string{"OTEL_TRACES_EXPORTER", "zipkin"}, ""},
		{"unsupported protocol", []string{"OTEL_TRACES_EXPORTER", "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := setup(t, tc.env...)
			if got := tel.TracesExported(); got != tc.want {
				t.Errorf("traces exported over %q, want %q", got, tc.want)
			}
			// The span is not ended, so nothing is sent to the (absent)
			// collector.
			_, span := tel.TracerProvider().Tracer("test").Start(context.Background(), "x")
			if span.IsRecording() != (tc.want != "") {
				t.Errorf("span recording = %v with exporter %q", span.IsRecording(), tc.want)
			}
			if f := tel.Propagator().Fields(); !slices.Contains(f, "traceparent") {
				t.Errorf("propagator fields %v lack traceparent", f)
			}
		})
	}
}
