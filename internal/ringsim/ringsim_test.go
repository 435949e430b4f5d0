package ringsim

import (
	"bytes"
	"context"
	"image/png"
	"testing"

	"github.com/ringcache/ringcache/pkg/ring"
)

func TestRun_DefaultConfigMeetsTheBoundsFrom3To100(t *testing.T) {
	rows, err := Run(t.Context(), ring.DefaultConfig(), 3, 100, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 98 || rows[0].Nodes != 3 || rows[97].Nodes != 100 {
		t.Fatalf("%d rows from %d", len(rows), rows[0].Nodes)
	}
	for _, r := range rows {
		if !r.WithinBounds() {
			t.Errorf("%d members: busiest %.3f× the mean, moves %.3f× the ideal", r.Nodes, r.MaxOverMean, r.MovedOverIdeal)
		}
		if r.JoinMoved == 0 || r.LeaveMoved == 0 || r.MovedOverIdeal != max(r.JoinOverIdeal, r.LeaveOverIdeal) {
			t.Errorf("%d members: implausible row %+v", r.Nodes, r)
		}
	}
}

func TestMeasure_CountsMovesExactly(t *testing.T) {
	r, err := Measure(ring.Config{PartitionCount: 256}, 4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 256 partitions: 64 each; a fifth member takes ⌊256/5⌋ = 51, a
	// leaver's 64 go to the other three.
	want := Row{Nodes: 4, Partitions: 256, MaxOverMean: 1, JoinMoved: 51, JoinOverIdeal: 51 * 5 / 256.0,
		LeaveMoved: 64, LeaveOverIdeal: 1, MovedOverIdeal: 1, SlotRanges: r.SlotRanges}
	if r != want {
		t.Fatalf("Measure = %+v, want %+v", r, want)
	}
}

func TestChurn_KeepsTheSizeAndIsRepeatable(t *testing.T) {
	r, err := ring.New(ring.DefaultConfig(), Members(10), 1)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Churn(r, 10, 100, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Churn(r, 10, 100, 1)
	if n := len(a.Members()); n < 9 || n > 11 {
		t.Fatalf("%d members after churn around 10", n)
	}
	if a.Version() != 101 || len(ring.Diff(a, b)) != 0 {
		t.Fatalf("version %d; same seed, %d partitions differ", a.Version(), len(ring.Diff(a, b)))
	}
	t.Logf("slot ranges: %d new, %d after 100 joins and leaves around 10 members", len(r.SlotRanges()), len(a.SlotRanges()))
}

func TestRun_RejectsBadSizesAndStopsWithContext(t *testing.T) {
	if _, err := Run(t.Context(), ring.DefaultConfig(), 5, 4, Options{}); err == nil {
		t.Error("sizes 5..4 accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Run(ctx, ring.DefaultConfig(), 3, 100, Options{}); err == nil {
		t.Error("Run went on after its context ended")
	}
}

func TestWritePlot_WritesAPNG(t *testing.T) {
	rows, err := Run(t.Context(), ring.DefaultConfig(), 3, 12, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WritePlot(&buf, rows, "test"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Fatalf("not a plot: %v", err)
	}
	if WritePlot(&buf, nil, "") == nil {
		t.Error("an empty plot was drawn")
	}
}
