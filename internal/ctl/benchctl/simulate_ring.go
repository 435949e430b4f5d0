package benchctl

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/ctl"
	"github.com/ringcache/ringcache/internal/ringsim"
	"github.com/ringcache/ringcache/pkg/ring"
)

type simulateRingFlags struct {
	nodes      string
	partitions int
	churn      int
	seed       uint64
	plot       string
}

func newSimulateRingCommand(g *ctl.Globals) *cobra.Command {
	f := &simulateRingFlags{}
	cmd := &cobra.Command{
		Use:   "ring",
		Short: "Balance and movement of the partition table at each cluster size",
		Long: "simulate ring builds, for each cluster size of --nodes, the partition table a new\n" +
			"cluster of that size starts with (ring.New, the configuration nodes use by default)\n" +
			"and measures:\n" +
			"  MAX/MEAN     partitions of the busiest member over the mean\n" +
			"  JOIN         partitions one member joining moves (ring.Rebalance), and over\n" +
			"               the ideal, partitions / (nodes + 1)\n" +
			"  LEAVE        partitions the busiest member leaving moves, and over the ideal,\n" +
			"               partitions / nodes\n" +
			"  RANGES       runs of contiguous slots with one owner (CLUSTER SLOTS entries),\n" +
			"               new and after --churn random joins and leaves around the size\n" +
			"It runs locally and talks to no node. The bounds a cluster is held to are\n" +
			"MAX/MEAN ≤ 1.05 and JOIN/IDEAL, LEAVE/IDEAL ≤ 1.1. -o json prints one object per\n" +
			"size; --plot FILE.png draws both ratios over the sizes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulateRing(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodes, "nodes", "3-100", "cluster sizes: N or A-B")
	fl.IntVar(&f.partitions, "partitions", ring.DefaultPartitionCount, "partitions: a power of two from 256 to 16384 (ring.partitions)")
	fl.IntVar(&f.churn, "churn", 100, "random joins and leaves before counting RANGES AFTER CHURN; 0 skips them")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed of the churn")
	fl.StringVar(&f.plot, "plot", "", "write both ratios over the cluster size to this PNG file")
	return cmd
}

// parseNodes reads N or A-B.
func parseNodes(s string) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err == nil {
		hi = lo
		if isRange {
			hi, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if err != nil || lo < 1 || hi < lo {
		return 0, 0, fmt.Errorf("--nodes %q: want a size N or a range A-B with 1 ≤ A ≤ B", s)
	}
	return lo, hi, nil
}

func runSimulateRing(cmd *cobra.Command, g *ctl.Globals, f *simulateRingFlags) error {
	lo, hi, err := parseNodes(f.nodes)
	if err != nil {
		return err
	}
	cfg := ring.DefaultConfig()
	cfg.PartitionCount = f.partitions
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--partitions: %w", err)
	}
	if hi > cfg.PartitionCount {
		return fmt.Errorf("--nodes %q: more members than the %d partitions", f.nodes, cfg.PartitionCount)
	}
	if f.churn < 0 {
		return fmt.Errorf("--churn %d: must not be negative", f.churn)
	}
	rows, err := ringsim.Run(cmd.Context(), cfg, lo, hi, ringsim.Options{Churn: f.churn, Seed: f.seed})
	if err != nil {
		return err
	}
	if f.plot != "" {
		if err := writeRingPlot(f.plot, rows, cfg); err != nil {
			return err
		}
	}
	return g.Render(cmd.OutOrStdout(), rows, func(w io.Writer) error { return printSimulateRing(w, rows, f) })
}

func writeRingPlot(path string, rows []ringsim.Row, cfg ring.Config) (err error) {
	file, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	defer func() {
		if cerr := file.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("--plot: %w", cerr)
		}
	}()
	title := fmt.Sprintf("partition table: %d partitions, balanced by ring.New and ring.Rebalance", cfg.PartitionCount)
	if err := ringsim.WritePlot(file, rows, title); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return nil
}

func printSimulateRing(w io.Writer, rows []ringsim.Row, f *simulateRingFlags) error {
	header := []string{"NODES", "MAX/MEAN", "JOIN MOVED", "JOIN/IDEAL", "LEAVE MOVED", "LEAVE/IDEAL", "RANGES"}
	if f.churn > 0 {
		header = append(header, "RANGES AFTER CHURN")
	}
	t := ctl.NewTable(w, header...)
	var worst ringsim.Row
	outside := 0
	for _, r := range rows {
		cells := []any{r.Nodes, ratio(r.MaxOverMean), r.JoinMoved, ratio(r.JoinOverIdeal), r.LeaveMoved, ratio(r.LeaveOverIdeal), r.SlotRanges}
		if f.churn > 0 {
			cells = append(cells, r.ChurnSlotRanges)
		}
		t.Row(cells...)
		worst.MaxOverMean = max(worst.MaxOverMean, r.MaxOverMean)
		worst.MovedOverIdeal = max(worst.MovedOverIdeal, r.MovedOverIdeal)
		if !r.WithinBounds() {
			outside++
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d partitions; worst: busiest member %s× the mean (bound %g), a join or leave moves %s× the ideal (bound %g); %d of %d sizes outside the bounds\n",
		rows[0].Partitions, ratio(worst.MaxOverMean), ringsim.MaxOverMeanBound, ratio(worst.MovedOverIdeal), ringsim.MovedOverIdealBound, outside, len(rows))
	if f.churn > 0 {
		fmt.Fprintf(w, "churn: %d random joins and leaves per size, seed %d\n", f.churn, f.seed)
	}
	if f.plot != "" {
		fmt.Fprintf(w, "plot: %s\n", f.plot)
	}
	return nil
}

func ratio(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }
