package telemetry

import (
	"errors"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerOptions say how Handler serves the admin endpoints:
//
//   - /metrics: the Prometheus text (or OpenMetrics) exposition of the
//     node's instruments;
//   - /healthz: 200 "ok" while the process runs (liveness);
//   - /readyz: 200 "ready" when Ready returns nil, else 503 with the
//     error it returns, which says why (readiness). Pass the node's
//     NotReady, which mirrors its gRPC health status: not ready until it
//     has joined its cluster and built its ring, and again from the moment
//     it starts draining;
//   - /debug/pprof/, only with Pprof: the Go profiler (CPU, heap,
//     goroutines, mutex and block profiles), as net/http/pprof serves it.
//     Profiles expose internals; turn it on only where the admin address
//     is kept off shared networks.
//
// Ready may be called concurrently and must be cheap.
type HandlerOptions struct {
	Ready func() error
	Pprof bool
}

// errNoReadiness is what /readyz says before the node exists.
var errNoReadiness = errors.New("starting")

// Handler returns the admin endpoints; see HandlerOptions.
func (t *Telemetry) Handler(opts HandlerOptions) http.Handler {
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
		err := errNoReadiness
		if opts.Ready != nil {
			err = opts.Ready()
		}
		if err == nil {
			_, _ = w.Write([]byte("ready\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
	})
	if !opts.Pprof {
		return mux
	}
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
