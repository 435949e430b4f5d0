package sim

import (
	"math"
	"testing"
)

func TestKnee_PiecewiseCurveBendsAtTheJoint(t *testing.T) {
	// Steep to (3, 0.9), then nearly flat to (10, 1).
	var xs, ys []float64
	for x := 0.0; x <= 10; x++ {
		y := 0.3 * x
		if x > 3 {
			y = 0.9 + (x-3)/70
		}
		xs, ys = append(xs, x), append(ys, y)
	}
	if i, ok := Knee(xs, ys); !ok || i != 3 {
		t.Errorf("Knee = %d, %v; want 3, true", i, ok)
	}
}

func TestKnee_SaturatingCurve(t *testing.T) {
	// y = 1 − e^(−x) on [0, 5]: normalised, y − x peaks where
	// e^(−x) = (1 − e^(−5))/5, at x = ln(5/(1 − e^(−5))) ≈ 1.62.
	var xs, ys []float64
	for i := 0; i <= 50; i++ {
		x := float64(i) / 10
		xs, ys = append(xs, x), append(ys, 1-math.Exp(-x))
	}
	i, ok := Knee(xs, ys)
	if !ok || math.Abs(xs[i]-1.62) > 0.051 {
		t.Errorf("Knee at x = %.2f (ok %v), want 1.62", xs[i], ok)
	}
}

func TestKnee_NoneWithoutABend(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6}
	for name, ys := range map[string][]float64{
		"line":     {1, 2, 3, 4, 5, 6},
		"convex":   {1, 4, 9, 16, 25, 36},
		"flat":     {7, 7, 7, 7, 7, 7},
		"gentle":   {1, 2.2, 3.3, 4.3, 5.2, 6},
		"two only": {1, 2},
	} {
		if i, ok := Knee(xs[:len(ys)], ys); ok {
			t.Errorf("%s: knee at %d, want none", name, i)
		}
	}
}

// results builds results of the given sizes in bytes and hit rates.
func results(bytes []uint64, rates []float64) []Result {
	rs := make([]Result, len(bytes))
	for i, b := range bytes {
		hits := uint64(math.Round(rates[i] * 1000))
		rs[i] = Result{Size: Size{Bytes: b}, MaxBytes: b, Hits: hits, Misses: 1000 - hits}
	}
	return rs
}

func TestFindKnee_DoublingGain(t *testing.T) {
	bytes := []uint64{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}
	rs := results(bytes, []float64{0.30, 0.55, 0.75, 0.85, 0.87, 0.88, 0.89})
	k, ok := FindKnee(rs)
	if !ok || k.Index != 3 {
		t.Fatalf("FindKnee = %+v, %v; want the knee at 8 KiB (index 3)", k, ok)
	}
	if !k.DoubledKnown || math.Abs(k.Doubled-0.87) > 1e-9 {
		t.Errorf("hit rate at twice the knee = %v (known %v), want 0.87", k.Doubled, k.DoubledKnown)
	}
	if got, want := KneeLabel(rs, k), "knee: 8.0 KiB → 85.0 % hits"; got != want {
		t.Errorf("label = %q, want %q", got, want)
	}

	// Between measured sizes the gain is interpolated on log₂ size.
	bytes = []uint64{1 << 10, 2 << 10, 4 << 10, 8 << 10, 32 << 10}
	rs = results(bytes, []float64{0.30, 0.60, 0.80, 0.84, 0.88})
	k, ok = FindKnee(rs)
	if !ok || k.Index != 2 {
		t.Fatalf("FindKnee = %+v, %v; want index 2", k, ok)
	}
	if !k.DoubledKnown || math.Abs(k.Doubled-0.84) > 1e-9 {
		t.Errorf("doubled = %v (known %v), want 0.84", k.Doubled, k.DoubledKnown)
	}
}

func TestInterpolate_OnlyInsideTheCurve(t *testing.T) {
	xs, ys := []float64{10, 11, 13}, []float64{0.5, 0.7, 0.8}
	for _, tc := range []struct {
		x    float64
		want float64
		ok   bool
	}{
		{10, 0.5, true}, {10.5, 0.6, true}, {12, 0.75, true}, {13, 0.8, true},
		{9.9, 0, false}, {13.1, 0, false},
	} {
		got, ok := interpolate(xs, ys, tc.x)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("interpolate(%v) = %v, %v; want %v, %v", tc.x, got, ok, tc.want, tc.ok)
		}
	}
}
