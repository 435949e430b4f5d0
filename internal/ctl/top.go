package ctl

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

func newTopCommand(o *options) *cobra.Command {
	var (
		interval   time.Duration
		iterations int
		once       bool
		nodeOnly   bool
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live per-node view of traffic, hit rate, memory and journal, refreshed every --interval",
		Long: "top asks every alive member (or only --addr with --node-only) for its stats and\n" +
			"journal every --interval and shows one row per node:\n\n" +
			"  OPS/S    gets + sets + deletes per second   MEM      store bytes / limit, use%\n" +
			"  HIT%     hits / gets in the interval        ENTRIES  entries in the store\n" +
			"  GETS/S   gets per second                    EVICT/S  evictions per second\n" +
			"  SETS/S   sets per second                    FWD/S    requests forwarded to owners/s\n" +
			"  JOURNAL  write-behind records pending       LAG      age of the oldest pending record\n" +
			"  DEAD     dead letters (see journal dead)\n\n" +
			"Rates are counter deltas between two samples, so they appear from the second\n" +
			"sample on (\"-\" before, and after a node restarts). A node that cannot be asked\n" +
			"shows as unreachable; the others go on. A node that does not answer holds the\n" +
			"refresh for up to --timeout: lower it for a steadier view.\n\n" +
			"On a terminal, top redraws the screen until interrupted (Ctrl-C). When stdout\n" +
			"is not a terminal, or with -n/--once, it prints snapshots one after another:\n" +
			"-n of them, or until interrupted. -o json prints one JSON object per line and\n" +
			"snapshot (rates per second, null until known).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, got %s", interval)
			}
			if iterations < 0 {
				return fmt.Errorf("--iterations must not be negative, got %d", iterations)
			}
			if once {
				if cmd.Flags().Changed("iterations") && iterations != 1 {
					return fmt.Errorf("--once conflicts with --iterations %d", iterations)
				}
				iterations = 1
			}
			w := cmd.OutOrStdout()
			return o.runTop(cmd.Context(), w, topConfig{
				interval:   interval,
				iterations: iterations,
				nodeOnly:   nodeOnly,
				redraw:     o.output == outputTable && iterations == 0 && isTerminal(w),
				now:        time.Now,
				sleep:      sleepCtx,
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&interval, "interval", time.Second, "time between two samples")
	f.IntVarP(&iterations, "iterations", "n", 0, "print this many snapshots, then exit (0: until interrupted)")
	f.BoolVar(&once, "once", false, "print one snapshot and exit (same as -n 1; it has no rates)")
	f.BoolVar(&nodeOnly, "node-only", false, "ask only the node at --addr")
	return cmd
}

// topConfig drives runTop. The command takes the clock from the time
// package; tests bring their own.
type topConfig struct {
	interval time.Duration
	// iterations is the number of snapshots to print; 0 means until ctx ends.
	iterations int
	nodeOnly   bool
	// redraw clears the screen before each snapshot.
	redraw bool
	now    func() time.Time
	// sleep waits d, or returns ctx's error once ctx ends.
	sleep func(ctx context.Context, d time.Duration) error
}

// topSnapshot is one refresh: -o json prints it as one line.
type topSnapshot struct {
	Time   time.Time `json:"time"`
	Sample int       `json:"sample"`
	Nodes  []topNode `json:"nodes"`
	// Total sums the nodes that answered; its rates are null unless every
	// one of them has rates.
	Total *topMetrics `json:"total,omitempty"`
	// Error is set when the node at --addr could not list the members.
	Error string `json:"error,omitempty"`
}

// topNode is one row: the node's metrics, or why it could not be asked.
type topNode struct {
	Node        string `json:"node"`
	Addr        string `json:"addr"`
	Error       string `json:"error,omitempty"`
	Unreachable bool   `json:"unreachable,omitempty"`
	*topMetrics
}

// topMetrics are the values of one node, or of the cluster for the total.
// Rates are per second over the last interval, nil when unknown.
type topMetrics struct {
	OpsPerSec       *float64    `json:"ops_per_sec"`
	GetsPerSec      *float64    `json:"gets_per_sec"`
	SetsPerSec      *float64    `json:"sets_per_sec"`
	DeletesPerSec   *float64    `json:"deletes_per_sec"`
	HitPercent      *float64    `json:"hit_percent"`
	EvictionsPerSec *float64    `json:"evictions_per_sec"`
	ForwardsPerSec  *float64    `json:"forwards_per_sec"`
	MemBytes        uint64      `json:"mem_bytes"`
	MemMaxBytes     uint64      `json:"mem_max_bytes"`
	Entries         uint64      `json:"entries"`
	Journal         *topJournal `json:"journal"` // nil without write-behind

	// delta holds the counter increases behind the rates, nil without rates.
	delta *topCounters
}

type topJournal struct {
	Pending            uint64 `json:"pending"`
	PendingBytes       uint64 `json:"pending_bytes"`
	OldestPendingAgeMs int64  `json:"oldest_pending_age_ms"`
	DeadLetters        uint64 `json:"dead_letters"`
}

// topCounters are the counters top turns into rates, summed over the
// namespaces of a node; at is when they were read, secs the length of a delta.
type topCounters struct {
	at                                             time.Time
	secs                                           float64
	gets, hits, sets, deletes, evictions, forwards uint64
}

func countersOf(s *ringcachev1.StatsResponse, at time.Time) topCounters {
	c := topCounters{at: at, evictions: s.GetStore().GetEvictions(), forwards: s.GetForwards()}
	for _, ns := range s.GetNamespaces() {
		c.gets += ns.GetGets()
		c.hits += ns.GetHits()
		c.sets += ns.GetSets()
		c.deletes += ns.GetDeletes()
	}
	return c
}

// since returns the increase of every counter from prev to c, or false when
// it cannot tell: no time passed, or a counter went down (a restart).
func (c topCounters) since(prev topCounters) (topCounters, bool) {
	secs := c.at.Sub(prev.at).Seconds()
	cur := []uint64{c.gets, c.hits, c.sets, c.deletes, c.evictions, c.forwards}
	old := []uint64{prev.gets, prev.hits, prev.sets, prev.deletes, prev.evictions, prev.forwards}
	for i := range cur {
		if cur[i] < old[i] {
			return topCounters{}, false
		}
	}
	if secs <= 0 {
		return topCounters{}, false
	}
	return topCounters{
		secs: secs, gets: c.gets - prev.gets, hits: c.hits - prev.hits, sets: c.sets - prev.sets,
		deletes: c.deletes - prev.deletes, evictions: c.evictions - prev.evictions, forwards: c.forwards - prev.forwards,
	}, true
}

// setRates fills the rates of m from its delta.
func (m *topMetrics) setRates() {
	d := m.delta
	if d == nil {
		return
	}
	perSec := func(n uint64) *float64 { return roundedPtr(float64(n) / d.secs) }
	m.OpsPerSec = perSec(d.gets + d.sets + d.deletes)
	m.GetsPerSec, m.SetsPerSec, m.DeletesPerSec = perSec(d.gets), perSec(d.sets), perSec(d.deletes)
	m.EvictionsPerSec, m.ForwardsPerSec = perSec(d.evictions), perSec(d.forwards)
	if d.gets > 0 {
		m.HitPercent = roundedPtr(100 * float64(d.hits) / float64(d.gets))
	}
}

// roundedPtr rounds v to three decimals, enough for rates and percentages.
func roundedPtr(v float64) *float64 {
	v = math.Round(v*1000) / 1000
	return &v
}

// topAnswer is what one node said in one sample.
type topAnswer struct {
	stats   *ringcachev1.StatsResponse
	journal *ringcachev1.JournalResponse // nil without write-behind
	at      time.Time
}

// runTop prints snapshots until c.iterations are printed or ctx ends, which
// is no error. Only a first sample that reaches no node fails it; later
// failures are shown in the snapshot.
func (o *options) runTop(ctx context.Context, w io.Writer, c topConfig) error {
	prev := map[string]topCounters{}
	var start time.Time
	for i := 1; c.iterations == 0 || i <= c.iterations; i++ {
		if i > 1 {
			if err := c.sleep(ctx, c.interval-c.now().Sub(start)); err != nil {
				return nil
			}
		}
		start = c.now()
		nodes, err := o.topSample(ctx, &c, prev)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && i == 1 {
			return err
		}
		snap := topSnapshot{Time: start, Sample: i, Nodes: nodes}
		if err != nil {
			snap.Error = err.Error()
		} else {
			snap.Total = topTotal(nodes)
		}
		if err := o.writeTop(w, snap, &c); err != nil {
			return err
		}
	}
	return nil
}

// topSample asks the nodes for their stats and journal and turns counters
// into rates against prev, which it updates. Its error is for failures
// before any node could be asked.
func (o *options) topSample(ctx context.Context, c *topConfig, prev map[string]topCounters) ([]topNode, error) {
	results, err := askNodes(ctx, o, c.nodeOnly, func(ctx context.Context, n *node) (topAnswer, error) {
		st, err := call(ctx, n, n.admin.Stats, &ringcachev1.StatsRequest{})
		if err != nil {
			return topAnswer{}, err
		}
		a := topAnswer{stats: st, at: c.now()}
		j, err := call(ctx, n, n.admin.Journal, &ringcachev1.JournalRequest{})
		switch {
		case err == nil:
			if j.GetEnabled() {
				a.journal = j
			}
		case isCode(err, codes.Unimplemented), isCode(err, codes.FailedPrecondition):
			// no journal to show
		default:
			return topAnswer{}, journalError(n.addr, err)
		}
		return a, nil
	})
	if err != nil {
		return nil, err
	}
	if c.nodeOnly && results[0].err != nil {
		return nil, results[0].err
	}
	nodes := make([]topNode, 0, len(results))
	for _, r := range results {
		tn := topNode{Node: cmp.Or(r.name, r.resp.stats.GetNode(), r.addr), Addr: r.addr}
		if r.err != nil {
			var rpcErr *RPCError
			tn.Error, tn.Unreachable = r.err.Error(), errors.As(r.err, &rpcErr) && rpcErr.Unreachable
			nodes = append(nodes, tn)
			continue
		}
		st := r.resp.stats.GetStore()
		m := &topMetrics{MemBytes: st.GetBytes(), MemMaxBytes: st.GetMaxBytes(), Entries: st.GetEntries()}
		if j := r.resp.journal; j != nil {
			m.Journal = &topJournal{
				Pending: j.GetPending(), PendingBytes: j.GetPendingBytes(),
				OldestPendingAgeMs: j.GetOldestPendingAgeMs(), DeadLetters: j.GetDeadLetters(),
			}
		}
		cur := countersOf(r.resp.stats, r.resp.at)
		if p, ok := prev[tn.Node]; ok {
			if d, ok := cur.since(p); ok {
				m.delta = &d
				m.setRates()
			}
		}
		prev[tn.Node] = cur
		tn.topMetrics = m
		nodes = append(nodes, tn)
	}
	slices.SortStableFunc(nodes, func(a, b topNode) int { return cmp.Compare(a.Node, b.Node) })
	return nodes, nil
}

// topTotal sums the nodes that answered, or returns nil when fewer than two
// did. Its rates are the sums of the nodes' rates, and its hit rate that of
// all their gets; all nil unless every answering node has rates.
func topTotal(nodes []topNode) *topMetrics {
	t := &topMetrics{}
	answered, rated := 0, 0
	var hits, gets uint64
	var rates [6]float64 // ops, gets, sets, deletes, evictions, forwards
	for _, n := range nodes {
		m := n.topMetrics
		if m == nil {
			continue
		}
		answered++
		t.MemBytes += m.MemBytes
		t.MemMaxBytes += m.MemMaxBytes
		t.Entries += m.Entries
		if j := m.Journal; j != nil {
			if t.Journal == nil {
				t.Journal = &topJournal{}
			}
			t.Journal.Pending += j.Pending
			t.Journal.PendingBytes += j.PendingBytes
			t.Journal.OldestPendingAgeMs = max(t.Journal.OldestPendingAgeMs, j.OldestPendingAgeMs)
			t.Journal.DeadLetters += j.DeadLetters
		}
		if m.delta == nil {
			continue
		}
		rated++
		hits += m.delta.hits
		gets += m.delta.gets
		for i, r := range []*float64{m.OpsPerSec, m.GetsPerSec, m.SetsPerSec, m.DeletesPerSec, m.EvictionsPerSec, m.ForwardsPerSec} {
			rates[i] += *r
		}
	}
	if answered < 2 {
		return nil
	}
	if rated == answered {
		ptrs := []**float64{&t.OpsPerSec, &t.GetsPerSec, &t.SetsPerSec, &t.DeletesPerSec, &t.EvictionsPerSec, &t.ForwardsPerSec}
		for i, p := range ptrs {
			*p = roundedPtr(rates[i])
		}
		if gets > 0 {
			t.HitPercent = roundedPtr(100 * float64(hits) / float64(gets))
		}
	}
	return t
}

// writeTop prints one snapshot: a JSON line, or a table after a blank line
// (the first one) or a cleared screen (redraw).
func (o *options) writeTop(w io.Writer, s topSnapshot, c *topConfig) error {
	if o.output == outputJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(s)
	}
	var b bytes.Buffer
	switch {
	case c.redraw:
		b.WriteString(clearScreen)
	case s.Sample > 1:
		b.WriteString("\n")
	}
	header := fmt.Sprintf("# %s  sample %d  every %s", s.Time.Format(time.TimeOnly), s.Sample, c.interval)
	if c.redraw {
		header += "  (Ctrl-C to quit)"
	}
	fmt.Fprintln(&b, header)
	if s.Error != "" {
		fmt.Fprintf(&b, "# cannot list the members: %s\n", s.Error)
		_, err := w.Write(b.Bytes())
		return err
	}
	t := newTable(&b, "NODE", "OPS/S", "HIT%", "GETS/S", "SETS/S", "MEM", "ENTRIES", "EVICT/S", "FWD/S", "JOURNAL", "LAG", "DEAD")
	for _, n := range s.Nodes {
		if n.topMetrics == nil {
			state := "error"
			if n.Unreachable {
				state = "unreachable"
			}
			t.row(n.Node, state)
			continue
		}
		t.row(topCells(n.Node, n.topMetrics)...)
	}
	if s.Total != nil {
		t.row(topCells("TOTAL", s.Total)...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, n := range s.Nodes {
		if n.Error != "" {
			fmt.Fprintf(&b, "# %s (%s): %s\n", n.Node, n.Addr, n.Error)
		}
	}
	if s.Sample == 1 && c.iterations != 1 {
		fmt.Fprintln(&b, "# rates (/s, HIT%) appear from the next sample")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func topCells(name string, m *topMetrics) []any {
	journal, lag, dead := "-", "-", "-"
	if j := m.Journal; j != nil {
		journal, lag, dead = strconv.FormatUint(j.Pending, 10), formatAge(j.OldestPendingAgeMs), strconv.FormatUint(j.DeadLetters, 10)
	}
	return []any{name, formatRate(m.OpsPerSec), formatRate(m.HitPercent), formatRate(m.GetsPerSec),
		formatRate(m.SetsPerSec), formatMem(m.MemBytes, m.MemMaxBytes), m.Entries,
		formatRate(m.EvictionsPerSec), formatRate(m.ForwardsPerSec), journal, lag, dead}
}

// formatRate renders a rate or percentage with one decimal, "-" when unknown.
func formatRate(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

// formatMem renders "1.5MiB/2.0MiB 75.0%", or only the bytes without a limit.
func formatMem(used, limit uint64) string {
	if limit == 0 {
		return formatBytes(used)
	}
	return formatBytes(used) + "/" + formatBytes(limit) + " " + percent(used, limit) + "%"
}

func formatBytes(n uint64) string { return strings.ReplaceAll(humanize.IBytes(n), " ", "") }

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
