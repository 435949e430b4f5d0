package telemetry

import (
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the admin endpoints:
//
//   - /metrics: the Prometheus text (or OpenMetrics) exposition of the
//     node's instruments;
//   - /healthz: 200 "ok" while the process runs (liveness);
//   - /readyz: 200 "ready" when ready() is true, else 503 with the reason
//     (readiness). Pass the node's Ready, which mirrors its gRPC health
//     status: false until it has joined its cluster and built its ring, and
//     again from the moment it starts draining;
//   - /debug/pprof/: the Go profiler (CPU, heap, goroutines, mutex and
//     block profiles), as net/http/pprof serves it. The admin address
//     binds to loopback by default: keep it off public networks.
//
// ready may be called concurrently and must be cheap.
func (t *Telemetry) Handler(ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{
		// A failing collector still lets the others through.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil && ready() {
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: the node is joining its cluster, building its ring, or draining\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
