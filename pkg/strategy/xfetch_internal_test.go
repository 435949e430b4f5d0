package strategy

import (
	"math"
	"testing"
	"time"
)

func TestLoadCost_RoundTripsWithinATenthOfAPercent(t *testing.T) {
	for _, d := range []time.Duration{
		time.Microsecond, 999 * time.Microsecond, 2047 * time.Microsecond, 2048 * time.Microsecond,
		3 * time.Millisecond, 123456 * time.Microsecond, 7 * time.Second, time.Hour, 50 * 24 * time.Hour,
	} {
		got := CostOf(d).Duration()
		if got > d || float64(d-got) > float64(d)/1000 {
			t.Errorf("CostOf(%v).Duration() = %v: off by more than 0.1%% or rounded up", d, got)
		}
	}
	if CostOf(0) != 0 || CostOf(-time.Second) != 0 || CostOf(999*time.Nanosecond) != 0 {
		t.Error("a duration under a microsecond must encode as 0 (unknown)")
	}
	if got := CostOf(1 << 62).Duration(); got < 50*24*time.Hour {
		t.Errorf("a huge duration saturates at %v, want at least 50 days", got)
	}
}

// The share of reads that refresh, at life L before expiry, is
// P(−ln U ≥ L/(Δβ)) = e^(−L/(Δβ)): it rises as expiry nears.
func TestXFetchDue_ProbabilityIsExpOfMinusLifeOverDeltaBeta(t *testing.T) {
	const trials = 20000
	cost := 10 * time.Millisecond
	for _, tc := range []struct {
		life time.Duration
		beta float64
	}{
		{time.Millisecond, 1}, {10 * time.Millisecond, 1}, {20 * time.Millisecond, 1}, {20 * time.Millisecond, 2}, {50 * time.Millisecond, 0.5},
	} {
		hits := 0
		for range trials {
			if xfetchDue(tc.life, cost, tc.beta) {
				hits++
			}
		}
		want := math.Exp(-float64(tc.life) / (float64(cost) * tc.beta))
		got := float64(hits) / trials
		// 6 standard deviations of a binomial share.
		if tol := 6 * math.Sqrt(want*(1-want)/trials); math.Abs(got-want) > max(tol, 0.002) {
			t.Errorf("life %v, beta %g: refreshed %.4f of reads, want %.4f", tc.life, tc.beta, got, want)
		}
	}
	if xfetchDue(38*cost, cost, 1) {
		t.Error("refresh with life beyond 37 Δβ, where no draw can reach")
	}
	if xfetchDue(time.Nanosecond, 0, 1) {
		t.Error("refresh with no measure of the load's cost")
	}
}

func BenchmarkXFetchDue_FarFromExpiry(b *testing.B) {
	for b.Loop() {
		xfetchDue(time.Minute, time.Millisecond, 1)
	}
}

func BenchmarkXFetchDue_NearExpiry(b *testing.B) {
	for b.Loop() {
		xfetchDue(time.Millisecond, time.Millisecond, 1)
	}
}
