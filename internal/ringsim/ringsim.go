// Package ringsim measures the partition table of package ring at a range of
// cluster sizes: how evenly New shares partitions out, how many partitions
// one join and one leave move with Rebalance against the ideal, and how
// many slot ranges (CLUSTER SLOTS entries) the table has, new and after
// churn. It is the model behind `ringcachectl simulate ring`; it runs
// locally and talks to no node.
//
// The figures are exact for the tables nodes build, not estimates: the
// simulation runs the same New and Rebalance, with the configuration given.
package ringsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/ringcache/ringcache/pkg/ring"
)

// Bounds of issue 15, which the default configuration meets for 3..100
// members.
const (
	MaxOverMeanBound    = 1.05
	MovedOverIdealBound = 1.1
)

// Row is what Measure finds for one cluster size.
type Row struct {
	Nodes      int `json:"nodes"`
	Partitions int `json:"partitions"`
	// MaxOverMean is the busiest member's partitions in New's table over
	// the mean, partitions / nodes.
	MaxOverMean float64 `json:"max_over_mean"`
	// JoinMoved is how many partitions a member joining that table moves
	// (Rebalance), and JoinOverIdeal that over partitions / (nodes + 1).
	JoinMoved     int     `json:"join_moved"`
	JoinOverIdeal float64 `json:"join_over_ideal"`
	// LeaveMoved is how many partitions the busiest member leaving moves,
	// and LeaveOverIdeal that over partitions / nodes.
	LeaveMoved     int     `json:"leave_moved"`
	LeaveOverIdeal float64 `json:"leave_over_ideal"`
	// MovedOverIdeal is the larger of JoinOverIdeal and LeaveOverIdeal.
	MovedOverIdeal float64 `json:"moved_over_ideal"`
	// SlotRanges is the number of runs of contiguous slots with one owner
	// in New's table: the entries of CLUSTER SLOTS.
	SlotRanges int `json:"slot_ranges"`
	// ChurnSlotRanges is SlotRanges after Options.Churn random joins and
	// leaves that keep the size within one of Nodes; 0 without churn.
	ChurnSlotRanges int `json:"churn_slot_ranges,omitempty"`
}

// WithinBounds reports whether r meets the bounds.
func (r Row) WithinBounds() bool {
	return r.MaxOverMean <= MaxOverMeanBound && r.MovedOverIdeal <= MovedOverIdealBound
}

// Options tunes Run.
type Options struct {
	// Churn is the number of random joins and leaves applied to each size's
	// table before counting ChurnSlotRanges; 0 skips it.
	Churn int
	// Seed seeds the churn.
	Seed uint64
}

// Run measures every size from minNodes to maxNodes with cfg, stopping
// early when ctx ends.
func Run(ctx context.Context, cfg ring.Config, minNodes, maxNodes int, opts Options) ([]Row, error) {
	if minNodes < 1 || maxNodes < minNodes {
		return nil, fmt.Errorf("ringsim: sizes %d..%d: want 1 ≤ min ≤ max", minNodes, maxNodes)
	}
	var rows []Row
	for n := minNodes; n <= maxNodes; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		row, err := Measure(cfg, n, opts)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Members returns n members named n1 … nN.
func Members(n int) []ring.Member {
	ms := make([]ring.Member, n)
	for i := range ms {
		ms[i] = ring.Member{Name: fmt.Sprintf("n%d", i+1)}
	}
	return ms
}

// Measure builds New's table for n members and measures it.
func Measure(cfg ring.Config, n int, opts Options) (Row, error) {
	ms := Members(n)
	r, err := ring.New(cfg, ms, 1)
	if err != nil {
		return Row{}, err
	}
	parts := r.PartitionCount()
	row := Row{Nodes: n, Partitions: parts, SlotRanges: len(r.SlotRanges())}
	busiest := ms[0]
	for _, m := range ms {
		if r.Partitions(m.Name) > r.Partitions(busiest.Name) {
			busiest = m
		}
	}
	row.MaxOverMean = float64(r.Partitions(busiest.Name)) * float64(n) / float64(parts)

	joined, err := ring.Rebalance(r, append(slices.Clone(ms), ring.Member{Name: fmt.Sprintf("n%d", n+1)}), 2)
	if err != nil {
		return Row{}, err
	}
	row.JoinMoved = len(ring.Diff(r, joined))
	row.JoinOverIdeal = float64(row.JoinMoved) * float64(n+1) / float64(parts)
	row.MovedOverIdeal = row.JoinOverIdeal
	if n > 1 {
		left, err := ring.Rebalance(r, slices.DeleteFunc(slices.Clone(ms), func(m ring.Member) bool { return m == busiest }), 2)
		if err != nil {
			return Row{}, err
		}
		row.LeaveMoved = len(ring.Diff(r, left))
		row.LeaveOverIdeal = float64(row.LeaveMoved) * float64(n) / float64(parts)
		row.MovedOverIdeal = max(row.JoinOverIdeal, row.LeaveOverIdeal)
	}
	if opts.Churn > 0 {
		churned, err := Churn(r, n, opts.Churn, opts.Seed)
		if err != nil {
			return Row{}, err
		}
		row.ChurnSlotRanges = len(churned.SlotRanges())
	}
	return row, nil
}

// Churn applies events random joins and leaves to r, one at a time, each
// table derived from the last with Rebalance as a coordinator would: a
// leave when the cluster is above size, a join when below, else either
// with even odds (at least one member always stays). It returns the last
// table.
func Churn(r *ring.Ring, size, events int, seed uint64) (*ring.Ring, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(size)))
	next := len(r.Members()) + 1
	for e := range events {
		ms := slices.Clone(r.Members())
		n := len(ms)
		if n > 1 && (n > size || (n == size && rng.IntN(2) == 0)) {
			i := rng.IntN(n)
			ms = slices.Delete(ms, i, i+1)
		} else {
			ms = append(ms, ring.Member{Name: fmt.Sprintf("j%d", next)})
			next++
		}
		var err error
		if r, err = ring.Rebalance(r, ms, r.Version()+1); err != nil {
			return nil, fmt.Errorf("ringsim: churn event %d: %w", e, err)
		}
	}
	return r, nil
}
