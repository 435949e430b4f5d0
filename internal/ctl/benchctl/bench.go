package benchctl

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/ctl"
	"github.com/ringcache/ringcache/internal/loadgen"
	"github.com/ringcache/ringcache/pkg/client"
)

// benchOptions are the flags of `bench`.
type benchOptions struct {
	target    string
	client    string // rueidis or go-redis, for a Redis target
	namespace string
	unary     bool
	noPrefill bool
	progress  bool
	cpuProf   string
	cfg       loadgen.Config
}

func newBenchCommand(g *ctl.Globals) *cobra.Command {
	b := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: ctl.BenchShort,
		Long: "bench runs --concurrency callers, each making one call at a time, for\n" +
			"--duration, and reports calls per second and latency percentiles from an\n" +
			"HDR histogram. The keys are key:0 … key:<keys-1>, chosen uniformly or\n" +
			"Zipf-distributed; a call is a Get with probability --read-ratio, else a Set\n" +
			"of --value-size bytes. Every key is Set once first (unless --no-prefill), so\n" +
			"Gets hit.\n\n" +
			"The target is the cluster of the node at --addr, through the Go client\n" +
			"(ring-aware, one Pipeline stream per node; --unary for one RPC per call),\n" +
			"or with --target redis://host:port a Redis server (or ringcache's RESP\n" +
			"door) through rueidis, auto-pipelining (--redis-client go-redis: a pool of\n" +
			"--concurrency connections), keys prefixed with the namespace and a colon;\n" +
			"redis-cluster://host:port[,host:port…] uses the client's cluster mode,\n" +
			"which reads the slot map and sends each key to its owner. The same\n" +
			"generator measures all of them.\n\n" +
			"Subcommands: stampede (database loads for concurrent Gets of a cold key)\n" +
			"and memory (bytes per cached entry).",
		Example: "  ringcachectl bench --namespace sessions --concurrency 50 --duration 10s --read-ratio 0.9\n" +
			"  ringcachectl bench --target redis://127.0.0.1:6379 --concurrency 50 -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(g, cmd, b)
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.target, "target", "", "redis://host:port (a Redis server or a RESP door) or redis-cluster://host:port[,…] to load instead of the cluster at --addr")
	f.StringVar(&b.client, "redis-client", loadgen.ClientRueidis, "Redis client for --target: rueidis (auto-pipelining) or go-redis (a connection per caller)")
	f.StringVar(&b.namespace, "namespace", "sessions", "namespace to use (a Redis key prefix with --target redis://…)")
	f.IntVar(&b.cfg.Concurrency, "concurrency", 50, "concurrent callers")
	f.DurationVar(&b.cfg.Duration, "duration", 10*time.Second, "how long to measure")
	f.Float64Var(&b.cfg.ReadRatio, "read-ratio", 0.9, "share of Gets, 0 to 1; the rest are Sets")
	f.IntVar(&b.cfg.Keys, "keys", 100_000, "number of distinct keys")
	f.StringVar(&b.cfg.KeyDist, "key-dist", loadgen.Uniform, "key distribution: uniform or zipf")
	f.Float64Var(&b.cfg.ZipfS, "zipf-s", 1.1, "Zipf exponent (> 1) with --key-dist zipf")
	f.IntVar(&b.cfg.ValueSize, "value-size", 100, "bytes per value")
	f.Int64Var(&b.cfg.Seed, "seed", 0, "seed of the key sequence (0: random)")
	f.BoolVar(&b.noPrefill, "no-prefill", false, "do not Set every key before measuring")
	f.BoolVar(&b.unary, "unary", false, "one RPC per call instead of the Pipeline stream (ringcache only)")
	f.BoolVar(&b.progress, "progress", true, "show a progress bar when stderr is a terminal")
	f.StringVar(&b.cpuProf, "cpuprofile", "", "write a CPU profile of the load generator (the client side) to this file")
	cmd.AddCommand(newStampedeCommand(g), newMemoryCommand(g))
	return cmd
}

func runBench(g *ctl.Globals, cmd *cobra.Command, b *benchOptions) error {
	b.cfg.Prefill = !b.noPrefill
	if err := b.cfg.Validate(); err != nil {
		return err
	}
	target, name, err := openTarget(g, b.target, b.client, b.namespace, b.cfg.Concurrency, b.unary)
	if err != nil {
		return err
	}
	defer target.Close()

	stderr := cmd.ErrOrStderr()
	if b.progress && ctl.IsTerminal(stderr) {
		bar := progressbar.NewOptions64(b.cfg.Duration.Milliseconds(),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("bench "+name),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		b.cfg.Progress = func(elapsed time.Duration, ops uint64) {
			bar.Describe(fmt.Sprintf("bench %s: %d calls", name, ops))
			_ = bar.Set64(min(elapsed.Milliseconds(), b.cfg.Duration.Milliseconds()))
		}
		defer bar.Finish()
	}
	if b.cpuProf != "" {
		f, err := os.Create(b.cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := loadgen.Run(cmd.Context(), target, b.cfg)
	if err != nil {
		return err
	}
	res.Target = name
	return g.Render(cmd.OutOrStdout(), res, func(w io.Writer) error { return printBench(w, []*loadgen.Result{res}) })
}

// openTarget connects to the Redis server target names, or to the cluster
// of --addr when target is empty; name says which, for the report.
func openTarget(g *ctl.Globals, target, redisClient, namespace string, concurrency int, unary bool) (loadgen.Target, string, error) {
	switch {
	case target == "":
		ca, cert, key, token := g.Security()
		opts := client.Options{Seeds: []string{g.Addr()}, Unary: unary, Token: token}
		if ca != "" || cert != "" || key != "" {
			opts.TLS = &client.TLSOptions{CAFile: ca, CertFile: cert, KeyFile: key}
		}
		r, err := loadgen.NewRingcache(opts, namespace)
		if err != nil {
			return nil, "", err
		}
		name := "ringcache"
		if unary {
			name += " (unary)"
		}
		return r, name, nil
	case loadgen.IsRedisURL(target):
		return loadgen.OpenRedis(target, namespace, redisClient, concurrency)
	}
	return nil, "", fmt.Errorf("unknown --target %q: leave it empty for the cluster at --addr, or give redis://host:port or redis-cluster://host:port", target)
}

func printBench(w io.Writer, results []*loadgen.Result) error {
	t := ctl.NewTable(w, "TARGET", "CALLERS", "READS", "OPS/S", "MEAN µs", "P50 µs", "P90 µs", "P99 µs", "P99.9 µs", "MAX µs", "HIT%", "ERRORS", "CALLS/FRAME")
	for _, r := range results {
		perFrame := "-"
		if r.CallsPerFrame > 0 {
			perFrame = fmt.Sprintf("%.1f", r.CallsPerFrame)
		}
		t.Row(r.Target, r.Concurrency, fmt.Sprintf("%.0f%%", 100*r.ReadRatio), fmt.Sprintf("%.0f", r.OpsPerSec),
			fmt.Sprintf("%.1f", r.MeanUs), r.P50Us, r.P90Us, r.P99Us, r.P999Us, r.MaxUs, ctl.Percent(r.Hits, r.Gets), r.Errors, perFrame)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Target, r.FirstError)
		}
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
