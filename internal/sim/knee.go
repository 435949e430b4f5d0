package sim

import (
	"math"
)

// Knee returns the index of the knee of the curve through (xs[i], ys[i]),
// xs increasing, found with Kneedle (Satopää, Albrecht, Irwin and Raghavan,
// "Finding a 'Kneedle' in a Haystack", 2011) at sensitivity 1:
//
//  1. x and y are normalised to [0, 1] by their minimum and maximum;
//  2. each point's distance above the chord from the first point to the
//     last is computed (for an increasing curve, yₙ − xₙ);
//  3. the knee is the point of largest distance, provided the distance
//     falls by more than the mean x step after it; otherwise the curve
//     has no marked bend (a line, a convex curve, noise) and ok is false.
//
// Fewer than three points, or a flat curve, have no knee.
func Knee(xs, ys []float64) (i int, ok bool) {
	n := len(xs)
	if n < 3 || len(ys) != n {
		return 0, false
	}
	xlo, xhi := bounds(xs)
	ylo, yhi := bounds(ys)
	if !(xhi > xlo) || !(yhi > ylo) {
		return 0, false
	}
	norm := func(v, lo, hi float64) float64 { return (v - lo) / (hi - lo) }
	x0, y0 := norm(xs[0], xlo, xhi), norm(ys[0], ylo, yhi)
	x1, y1 := norm(xs[n-1], xlo, xhi), norm(ys[n-1], ylo, yhi)
	diff := make([]float64, n)
	best := 0
	for j := range n {
		x, y := norm(xs[j], xlo, xhi), norm(ys[j], ylo, yhi)
		diff[j] = y - (y0 + (y1-y0)*(x-x0)/(x1-x0))
		if diff[j] > diff[best] {
			best = j
		}
	}
	if diff[best] <= 0 {
		return 0, false
	}
	// Kneedle's threshold: the difference curve must drop by the mean
	// normalised x step after the candidate for it to count as a knee.
	threshold := diff[best] - 1/float64(n-1)
	for j := best + 1; j < n; j++ {
		if diff[j] < threshold {
			return best, true
		}
	}
	return 0, false
}

func bounds(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// KneePoint is the knee of a hit rate curve.
type KneePoint struct {
	// Index is the knee's position in the results.
	Index int
	// Doubled is the hit rate at twice the knee's MaxBytes, interpolated
	// on the log-size curve; DoubledKnown is false when twice the knee is
	// beyond the largest size simulated.
	Doubled      float64
	DoubledKnown bool
}

// FindKnee returns the knee of the hit rate over log₂ of the size, results
// sorted by size as Run returns them. The log scale matches the plot and how
// sizes are chosen (doublings).
func FindKnee(results []Result) (KneePoint, bool) {
	xs, ys := curve(results)
	i, ok := Knee(xs, ys)
	if !ok {
		return KneePoint{}, false
	}
	k := KneePoint{Index: i}
	k.Doubled, k.DoubledKnown = interpolate(xs, ys, xs[i]+1)
	return k, true
}

// curve returns log₂ MaxBytes and the hit rate of each result.
func curve(results []Result) (xs, ys []float64) {
	xs, ys = make([]float64, len(results)), make([]float64, len(results))
	for i, r := range results {
		xs[i], ys[i] = math.Log2(float64(r.MaxBytes)), r.HitRate()
	}
	return xs, ys
}

// interpolate returns y at x on the polyline through (xs, ys), xs
// increasing, and false when x is outside it.
func interpolate(xs, ys []float64, x float64) (float64, bool) {
	for j := 1; j < len(xs); j++ {
		if x <= xs[j] {
			if x < xs[j-1] {
				return 0, false
			}
			f := (x - xs[j-1]) / (xs[j] - xs[j-1])
			return ys[j-1] + f*(ys[j]-ys[j-1]), true
		}
	}
	return 0, false
}
