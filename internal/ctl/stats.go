package ctl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// statsJSON mirrors StatsResponse with its proto field names and plain JSON
// numbers (protojson would quote uint64s).
type statsJSON struct {
	Node          string          `json:"node"`
	Store         storeJSON       `json:"store"`
	Namespaces    []namespaceJSON `json:"namespaces"`
	Forwards      uint64          `json:"forwards"`
	ForwardErrors uint64          `json:"forward_errors"`
	ForwardedIn   uint64          `json:"forwarded_in"`
	// ClockRejections counts peer clock values refused as too far ahead
	// (docs/security.md).
	ClockRejections uint64 `json:"clock_rejections"`
	// HotCache is set only on nodes that run one (--hot-cache-bytes).
	HotCache *hotCacheJSON `json:"hot_cache,omitempty"`
	// The process's resident set size and Go memory limit (GOMEMLIMIT),
	// next to the store's bound (store.max_bytes) and charge
	// (store.bytes); 0 when unknown or unset.
	RSSBytes         uint64 `json:"rss_bytes"`
	MemoryLimitBytes uint64 `json:"memory_limit_bytes"`
}

type hotCacheJSON struct {
	Hits          uint64 `json:"hits"`
	Fills         uint64 `json:"fills"`
	Invalidations uint64 `json:"invalidations"`
	Resets        uint64 `json:"resets"`
	Entries       uint64 `json:"entries"`
	Bytes         uint64 `json:"bytes"`
	MaxBytes      uint64 `json:"max_bytes"`
	Streams       uint64 `json:"streams"`
}

type storeJSON struct {
	Entries   uint64 `json:"entries"`
	Bytes     uint64 `json:"bytes"`
	MaxBytes  uint64 `json:"max_bytes"`
	Evictions uint64 `json:"evictions"`
}

type namespaceJSON struct {
	Name              string `json:"name"`
	Gets              uint64 `json:"gets"`
	Hits              uint64 `json:"hits"`
	Misses            uint64 `json:"misses"`
	Loads             uint64 `json:"loads"`
	LoadsDeduplicated uint64 `json:"loads_deduplicated"`
	LoadErrors        uint64 `json:"load_errors"`
	NegativeHits      uint64 `json:"negative_hits"`
	Sets              uint64 `json:"sets"`
	Deletes           uint64 `json:"deletes"`
	WriteErrors       uint64 `json:"write_errors"`
	Backpressure      uint64 `json:"backpressure"`
	Refreshes         uint64 `json:"refreshes"`
	PendingHits       uint64 `json:"pending_hits"`
}

// writeCounters reports whether any write-behind or refresh counter of ns is
// set; printStats shows their columns only then.
func (ns namespaceJSON) writeCounters() bool {
	return ns.WriteErrors|ns.Backpressure|ns.Refreshes|ns.PendingHits != 0
}

func newStatsJSON(r *ringcachev1.StatsResponse) statsJSON {
	s := r.GetStore()
	v := statsJSON{
		Node: r.GetNode(),
		Store: storeJSON{
			Entries: s.GetEntries(), Bytes: s.GetBytes(),
			MaxBytes: s.GetMaxBytes(), Evictions: s.GetEvictions(),
		},
		Namespaces:      []namespaceJSON{},
		Forwards:        r.GetForwards(),
		ForwardErrors:   r.GetForwardErrors(),
		ForwardedIn:     r.GetForwardedIn(),
		ClockRejections: r.GetClockRejections(),

		RSSBytes:         r.GetRssBytes(),
		MemoryLimitBytes: r.GetMemoryLimitBytes(),
	}
	if h := r.GetHotCache(); h != nil {
		v.HotCache = &hotCacheJSON{
			Hits: h.GetHits(), Fills: h.GetFills(), Invalidations: h.GetInvalidations(), Resets: h.GetResets(),
			Entries: h.GetEntries(), Bytes: h.GetBytes(), MaxBytes: h.GetMaxBytes(), Streams: h.GetStreams(),
		}
	}
	for _, ns := range r.GetNamespaces() {
		v.Namespaces = append(v.Namespaces, namespaceJSON{
			Name: ns.GetName(), Gets: ns.GetGets(), Hits: ns.GetHits(), Misses: ns.GetMisses(),
			Loads: ns.GetLoads(), LoadsDeduplicated: ns.GetLoadsDeduplicated(),
			LoadErrors: ns.GetLoadErrors(), NegativeHits: ns.GetNegativeHits(),
			Sets: ns.GetSets(), Deletes: ns.GetDeletes(),
			WriteErrors: ns.GetWriteErrors(), Backpressure: ns.GetBackpressure(),
			Refreshes: ns.GetRefreshes(), PendingHits: ns.GetPendingHits(),
		})
	}
	return v
}

func newStatsCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the counters of every alive member (or only --addr with --node-only)",
		Long: "stats lists the members known to --addr and asks every alive one for its\n" +
			"counters. Nodes that answer are printed even when others fail; the\n" +
			"command then fails naming the nodes it could not ask.\n\n" +
			"The first table shows the store's charge (BYTES) and bound (MAX BYTES)\n" +
			"next to the process's resident set (RSS) and Go memory limit (GO LIMIT).\n" +
			"The namespace columns WRITE ERRS, BACKPRESSURE, REFRESHES and PENDING HITS\n" +
			"(write modes and refresh-ahead) are shown only when one of them is non-zero\n" +
			"on some node; -o json always has them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stats, err := o.collectStats(cmd.Context(), nodeOnly)
			if len(stats) == 0 {
				return err
			}
			v := make([]statsJSON, len(stats))
			for i, s := range stats {
				v[i] = newStatsJSON(s)
			}
			if rerr := o.render(cmd.OutOrStdout(), v, func(w io.Writer) error { return printStats(w, v) }); rerr != nil {
				return rerr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "ask only the node at --addr")
	return cmd
}

// collectStats returns the stats of the asked nodes sorted by node name. It
// may return some stats together with an error naming the nodes that failed.
func (o *options) collectStats(ctx context.Context, nodeOnly bool) ([]*ringcachev1.StatsResponse, error) {
	results, err := askNodes(ctx, o, nodeOnly, func(ctx context.Context, n *node) (*ringcachev1.StatsResponse, error) {
		return call(ctx, n, n.admin.Stats, &ringcachev1.StatsRequest{})
	})
	if err != nil {
		return nil, err
	}
	if nodeOnly {
		if err := results[0].err; err != nil {
			return nil, err
		}
	}
	var stats []*ringcachev1.StatsResponse
	for _, r := range results {
		if r.err == nil {
			stats = append(stats, r.resp)
		}
	}
	slices.SortStableFunc(stats, func(a, b *ringcachev1.StatsResponse) int { return cmp.Compare(a.GetNode(), b.GetNode()) })
	return stats, nodeErrors("stats", results)
}

func printStats(w io.Writer, stats []statsJSON) error {
	// The store's charge and bound next to what the process really holds:
	// RSS above GO LIMIT means memory the bound does not cover.
	fmt.Fprintln(w, "# store and memory")
	t := newTable(w, "NODE", "ENTRIES", "BYTES", "MAX BYTES", "USE%", "EVICTIONS", "RSS", "GO LIMIT")
	orDash := func(n uint64) any {
		if n == 0 {
			return "-"
		}
		return n
	}
	for _, s := range stats {
		st := s.Store
		t.row(s.Node, st.Entries, st.Bytes, st.MaxBytes, percent(st.Bytes, st.MaxBytes), st.Evictions,
			orDash(s.RSSBytes), orDash(s.MemoryLimitBytes))
	}
	if err := t.flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\n# namespaces")
	writes := slices.ContainsFunc(stats, func(s statsJSON) bool {
		return slices.ContainsFunc(s.Namespaces, namespaceJSON.writeCounters)
	})
	header := []string{"NODE", "NAMESPACE", "GETS", "HITS", "MISSES", "HIT%", "LOADS", "DEDUPED",
		"LOAD ERRS", "NEG HITS", "SETS", "DELS"}
	if writes {
		header = append(header, "WRITE ERRS", "BACKPRESSURE", "REFRESHES", "PENDING HITS")
	}
	t = newTable(w, header...)
	for _, s := range stats {
		for _, ns := range s.Namespaces {
			cells := []any{s.Node, ns.Name, ns.Gets, ns.Hits, ns.Misses, percent(ns.Hits, ns.Gets), ns.Loads,
				ns.LoadsDeduplicated, ns.LoadErrors, ns.NegativeHits, ns.Sets, ns.Deletes}
			if writes {
				cells = append(cells, ns.WriteErrors, ns.Backpressure, ns.Refreshes, ns.PendingHits)
			}
			t.row(cells...)
		}
	}
	if err := t.flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\n# forwards")
	t = newTable(w, "NODE", "FORWARDS", "FORWARD ERRS", "FORWARDED IN", "CLOCK REJECTIONS")
	for _, s := range stats {
		t.row(s.Node, s.Forwards, s.ForwardErrors, s.ForwardedIn, s.ClockRejections)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if !slices.ContainsFunc(stats, func(s statsJSON) bool { return s.HotCache != nil }) {
		return nil
	}
	fmt.Fprintln(w, "\n# hot cache (keys other nodes own)")
	t = newTable(w, "NODE", "HITS", "FILLS", "INVALIDATIONS", "RESETS", "ENTRIES", "BYTES", "MAX BYTES", "OWNERS WATCHED")
	for _, s := range stats {
		if h := s.HotCache; h != nil {
			t.row(s.Node, h.Hits, h.Fills, h.Invalidations, h.Resets, h.Entries, h.Bytes, h.MaxBytes, h.Streams)
		} else {
			t.row(s.Node, "off", "", "", "", "", "", "", "")
		}
	}
	return t.flush()
}
