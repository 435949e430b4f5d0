package benchctl

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/ctl"
	"github.com/ringcache/ringcache/internal/sim"
)

// simulateFlags holds the flags of simulate.
type simulateFlags struct {
	trace     string
	zipfS     float64
	keys      uint64
	requests  int
	valueSize uint64
	seed      int64
	namespace string
	sizes     []string
	min, max  string
	steps     int
	warmup    float64
	plot      string
	progress  bool
}

// simulateJSON is the -o json output of simulate.
type simulateJSON struct {
	Workload       simWorkloadJSON `json:"workload"`
	Requests       int             `json:"requests"`
	WarmupRequests int             `json:"warmup_requests"`
	DistinctKeys   int             `json:"distinct_keys"`
	MeanEntryBytes float64         `json:"mean_entry_bytes"`
	Results        []simResultJSON `json:"results"`
	Knee           *simKneeJSON    `json:"knee"` // null when the curve has none
	Plot           string          `json:"plot,omitempty"`
	ElapsedSeconds float64         `json:"elapsed_seconds"`
}

type simWorkloadJSON struct {
	Source    string  `json:"source"` // "zipf" or "trace"
	Trace     string  `json:"trace,omitempty"`
	ZipfS     float64 `json:"zipf_s,omitempty"`
	Keys      uint64  `json:"keys,omitempty"`
	Seed      int64   `json:"seed,omitempty"`
	ValueSize uint64  `json:"value_size"`
	Namespace string  `json:"namespace,omitempty"`
}

type simResultJSON struct {
	Size        string  `json:"size"`
	SizeEntries uint64  `json:"size_entries,omitempty"` // set when the size was given in entries
	MaxBytes    uint64  `json:"max_bytes"`
	Entries     int     `json:"entries"`
	Bytes       uint64  `json:"bytes"`
	Hits        uint64  `json:"hits"`
	Misses      uint64  `json:"misses"`
	Evictions   uint64  `json:"evictions"`
	HitRate     float64 `json:"hit_rate"`
}

type simKneeJSON struct {
	Size     string  `json:"size"`
	MaxBytes uint64  `json:"max_bytes"`
	HitRate  float64 `json:"hit_rate"`
	// DoubledHitRate is the hit rate at twice the knee's bytes, interpolated;
	// null when twice the knee is beyond the largest size simulated.
	DoubledHitRate *float64 `json:"doubled_hit_rate"`
}

func newSimulateCommand(g *ctl.Globals) *cobra.Command {
	f := &simulateFlags{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: ctl.SimulateShort,
		Long: "simulate replays a sequence of Gets against one node's store (otter W-TinyLFU,\n" +
			"bounded by bytes: key and value as allocated + 176 B per entry) at each of a range of sizes, and\n" +
			"prints the hit rate of each. A miss inserts the key, as a read-through node does.\n" +
			"It runs locally and talks to no node.\n\n" +
			"The trace is --trace FILE (one \"key\" or \"key value-bytes\" per line, - for stdin;\n" +
			"a line without a size reuses the key's last one, or --value-size) or, by default,\n" +
			"generated: --requests Gets of --keys keys named key:0, key:1, ... whose popularity\n" +
			"follows a Zipf law of exponent --zipf-s.\n\n" +
			"Sizes are --sizes (entries such as 1000, or bytes such as 16MiB) or --steps sizes\n" +
			"log-spaced from --min to --max; by default 11 doublings up to the bytes that hold\n" +
			"every key of the trace. Hits are counted after the first --warmup of the trace.\n\n" +
			"The knee is the size past which more memory buys little: the point farthest above\n" +
			"the chord of the normalised curve over log size (Kneedle). --plot FILE.png draws\n" +
			"the curve with the knee marked.\n\n" +
			"simulate ring measures the partition table instead: balance and movement at each\n" +
			"cluster size.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd, g, f) },
	}
	cmd.AddCommand(newSimulateRingCommand(g))
	fl := cmd.Flags()
	fl.StringVar(&f.trace, "trace", "", `trace file: one "key" or "key value-bytes" per line; - reads stdin`)
	fl.Float64Var(&f.zipfS, "zipf-s", 1.1, "Zipf exponent of the generated trace (> 1; larger = more skewed)")
	fl.Uint64Var(&f.keys, "keys", 100000, "key space of the generated trace")
	fl.IntVar(&f.requests, "requests", 1000000, "requests of the generated trace")
	fl.Int64Var(&f.seed, "seed", 1, "random seed of the generated trace")
	fl.Uint64Var(&f.valueSize, "value-size", 100, "value bytes of every generated request, and of a new key on a trace line without a size")
	fl.StringVar(&f.namespace, "namespace", "", "count this namespace's name in every key, as the node stores it")
	fl.StringSliceVar(&f.sizes, "sizes", nil, "cache sizes, comma-separated: entries (1000) or bytes (16MiB)")
	fl.StringVar(&f.min, "min", "", "smallest size of a log-spaced range (default: --max / 1024)")
	fl.StringVar(&f.max, "max", "", "largest size of a log-spaced range (default: the trace's key bytes, rounded up to a power of 2)")
	fl.IntVar(&f.steps, "steps", 11, "sizes in the --min..--max range")
	fl.Float64Var(&f.warmup, "warmup", 0.1, "fraction of the trace replayed before hits are counted, in [0, 1)")
	fl.StringVar(&f.plot, "plot", "", "write the hit rate curve to this PNG file")
	fl.BoolVar(&f.progress, "progress", true, "show a progress bar when stderr is a terminal")
	return cmd
}

func runSimulate(cmd *cobra.Command, g *ctl.Globals, f *simulateFlags) error {
	start := time.Now()
	if err := f.validate(cmd); err != nil {
		return err
	}
	trace, workload, err := f.loadTrace(cmd)
	if err != nil {
		return err
	}
	sizes, err := f.sizeList(trace)
	if err != nil {
		return err
	}
	cfg := sim.Config{Warmup: f.warmup}
	var bar *progressbar.ProgressBar
	if w := cmd.ErrOrStderr(); f.progress && ctl.IsTerminal(w) {
		bar = progressbar.NewOptions64(int64(trace.Len())*int64(len(sizes)),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(fmt.Sprintf("simulating %d sizes", len(sizes))),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		cfg.Progress = func(n int) { _ = bar.Add(n) }
	}
	results, err := sim.Run(cmd.Context(), trace, sizes, cfg)
	if bar != nil {
		_ = bar.Finish() // clears the bar before anything is printed
	}
	if err != nil {
		return err
	}
	knee, hasKnee := sim.FindKnee(results)
	v := newSimulateJSON(trace, workload, f.warmup, results, knee, hasKnee)
	if f.plot != "" {
		var k *sim.KneePoint
		if hasKnee {
			k = &knee
		}
		if err := writeSimPlot(f.plot, results, k, workloadTitle(v)); err != nil {
			return err
		}
		v.Plot = f.plot
	}
	v.ElapsedSeconds = math.Round(time.Since(start).Seconds()*1000) / 1000
	return g.Render(cmd.OutOrStdout(), v, func(w io.Writer) error { return printSimulate(w, v, len(sizes)) })
}

func (f *simulateFlags) validate(cmd *cobra.Command) error {
	changed := cmd.Flags().Changed
	if f.trace != "" {
		for _, name := range []string{"zipf-s", "keys", "requests", "seed"} {
			if changed(name) {
				return fmt.Errorf("--%s describes a generated trace; it cannot be used with --trace", name)
			}
		}
	} else {
		switch {
		case !(f.zipfS > 1) || math.IsInf(f.zipfS, 0):
			return fmt.Errorf("--zipf-s must be greater than 1, got %g", f.zipfS)
		case f.keys == 0:
			return errors.New("--keys must be positive")
		case f.requests <= 0:
			return fmt.Errorf("--requests must be positive, got %d", f.requests)
		}
	}
	if len(f.sizes) > 0 {
		for _, name := range []string{"min", "max", "steps"} {
			if changed(name) {
				return fmt.Errorf("--%s sets a size range; it cannot be used with --sizes", name)
			}
		}
	}
	if f.steps < 1 {
		return fmt.Errorf("--steps must be at least 1, got %d", f.steps)
	}
	if !(f.warmup >= 0 && f.warmup < 1) {
		return fmt.Errorf("--warmup must be in [0, 1), got %g", f.warmup)
	}
	if f.plot != "" {
		// Fail now rather than after a long simulation.
		if fi, err := os.Stat(filepath.Dir(f.plot)); err != nil || !fi.IsDir() {
			return fmt.Errorf("--plot %s: directory %s does not exist", f.plot, filepath.Dir(f.plot))
		}
	}
	return nil
}

// prefixBytes is what the node adds to every key in its store: the
// namespace name and a 0 byte.
func (f *simulateFlags) prefixBytes() int {
	if f.namespace == "" {
		return 0
	}
	return len(f.namespace) + 1
}

func (f *simulateFlags) loadTrace(cmd *cobra.Command) (*sim.Trace, simWorkloadJSON, error) {
	wl := simWorkloadJSON{ValueSize: f.valueSize, Namespace: f.namespace}
	if f.trace == "" {
		wl.Source, wl.ZipfS, wl.Keys, wl.Seed = "zipf", f.zipfS, f.keys, f.seed
		t, err := sim.Zipf(sim.ZipfConfig{
			S: f.zipfS, Keys: f.keys, Requests: f.requests, ValueSize: f.valueSize,
			PrefixBytes: f.prefixBytes(), Seed: f.seed,
		})
		return t, wl, err
	}
	wl.Source, wl.Trace = "trace", f.trace
	r := cmd.InOrStdin()
	if f.trace != "-" {
		file, err := os.Open(f.trace)
		if err != nil {
			return nil, wl, fmt.Errorf("--trace: %w", err)
		}
		defer file.Close()
		r = file
	}
	t, err := sim.ReadTrace(r, sim.TraceOptions{ValueSize: f.valueSize, PrefixBytes: f.prefixBytes()})
	if err != nil {
		return nil, wl, fmt.Errorf("--trace %s: %w", f.trace, err)
	}
	return t, wl, nil
}

// sizeList returns the sizes to simulate: --sizes, or the --min..--max
// range with defaults taken from the trace.
func (f *simulateFlags) sizeList(t *sim.Trace) ([]sim.Size, error) {
	if len(f.sizes) > 0 {
		s, err := sim.ParseSizes(f.sizes)
		if err != nil {
			return nil, fmt.Errorf("--sizes: %w", err)
		}
		return s, nil
	}
	var lo, hi sim.Size
	var err error
	if f.max != "" {
		if hi, err = sim.ParseSize(f.max); err != nil {
			return nil, fmt.Errorf("--max: %w", err)
		}
	}
	if f.min != "" {
		if lo, err = sim.ParseSize(f.min); err != nil {
			return nil, fmt.Errorf("--min: %w", err)
		}
	}
	switch {
	case f.max == "" && f.min == "":
		// Every key of the trace, rounded up to a power of two bytes.
		all := uint64(math.Ceil(float64(t.Distinct()) * t.MeanEntryBytes()))
		hi = sim.Size{Bytes: uint64(1) << bitsFor(all)}
		lo = sim.Size{Bytes: max(1, hi.Bytes>>10)}
	case f.min == "":
		lo = hi.Scale(1.0 / 1024)
	case f.max == "":
		hi = lo.Scale(1024)
	}
	s, err := sim.LogSpace(lo, hi, f.steps)
	if err != nil {
		return nil, fmt.Errorf("--min/--max: %w", err)
	}
	return s, nil
}

// bitsFor returns the smallest b with 1<<b ≥ n.
func bitsFor(n uint64) int {
	b := 0
	for uint64(1)<<b < n && b < 63 {
		b++
	}
	return b
}

func newSimulateJSON(t *sim.Trace, wl simWorkloadJSON, warmup float64, results []sim.Result, knee sim.KneePoint, hasKnee bool) simulateJSON {
	v := simulateJSON{
		Workload:       wl,
		Requests:       t.Len(),
		WarmupRequests: sim.WarmupRequests(t.Len(), warmup),
		DistinctKeys:   t.Distinct(),
		MeanEntryBytes: math.Round(t.MeanEntryBytes()*10) / 10,
		Results:        make([]simResultJSON, len(results)),
	}
	for i, r := range results {
		v.Results[i] = simResultJSON{
			Size: r.Size.String(), SizeEntries: r.Size.Entries, MaxBytes: r.MaxBytes,
			Entries: r.Entries, Bytes: r.Bytes, Hits: r.Hits, Misses: r.Misses,
			Evictions: r.Evictions, HitRate: r.HitRate(),
		}
	}
	if hasKnee {
		r := results[knee.Index]
		v.Knee = &simKneeJSON{Size: r.Size.String(), MaxBytes: r.MaxBytes, HitRate: r.HitRate()}
		if knee.DoubledKnown {
			d := knee.Doubled
			v.Knee.DoubledHitRate = &d
		}
	}
	return v
}

// workloadTitle describes the workload in one line.
func workloadTitle(v simulateJSON) string {
	wl := v.Workload
	var s string
	if wl.Source == "zipf" {
		s = fmt.Sprintf("Zipf s=%g over %s keys", wl.ZipfS, humanize.Comma(int64(wl.Keys)))
	} else {
		s = "trace " + wl.Trace
	}
	return fmt.Sprintf("%s: %s requests, %s distinct keys, %.0f B per entry",
		s, humanize.Comma(int64(v.Requests)), humanize.Comma(int64(v.DistinctKeys)), v.MeanEntryBytes)
}

func writeSimPlot(path string, results []sim.Result, knee *sim.KneePoint, title string) (err error) {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	defer func() {
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--plot: %w", cerr)
		}
	}()
	if err := sim.WritePlot(file, results, knee, sim.PlotOptions{Title: title}); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return nil
}

func printSimulate(w io.Writer, v simulateJSON, sizes int) error {
	fmt.Fprintf(w, "# %s; hits counted after the first %s requests\n", workloadTitle(v), humanize.Comma(int64(v.WarmupRequests)))
	t := ctl.NewTable(w, "SIZE", "MAX BYTES", "ENTRIES", "HIT%", "HITS", "MISSES", "EVICTIONS")
	for _, r := range v.Results {
		t.Row(r.Size, r.MaxBytes, r.Entries, ctl.Percent(r.Hits, r.Hits+r.Misses), r.Hits, r.Misses, r.Evictions)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	switch k := v.Knee; {
	case k == nil:
		fmt.Fprintln(w, "knee: none (the curve bends nowhere clearly; try a wider --min..--max)")
	case k.DoubledHitRate == nil:
		fmt.Fprintf(w, "knee: %s → %.1f %% hits; twice it is beyond the largest size simulated\n", k.Size, 100*k.HitRate)
	default:
		fmt.Fprintf(w, "knee: %s → %.1f %% hits; doubling it gains %+.1f pts\n", k.Size, 100*k.HitRate, 100*(*k.DoubledHitRate-k.HitRate))
	}
	if v.Plot != "" {
		fmt.Fprintf(w, "plot: %s\n", v.Plot)
	}
	_, err := fmt.Fprintf(w, "simulated %d sizes × %s requests in %.1fs\n", sizes, humanize.Comma(int64(v.Requests)), v.ElapsedSeconds)
	return err
}
