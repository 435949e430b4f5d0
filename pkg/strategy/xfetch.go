package strategy

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// XFetch: probabilistic early refresh, as in "Optimal Probabilistic Cache
// Stampede Prevention" (Vattani, Chierichetti, Lowenstein; VLDB 2015).
// Every read of an entry recomputes it early, in the background, when
//
//	now − Δ·β·ln(rand()) ≥ expiry
//
// that is when its remaining life is at most Δ·β·(−ln rand()), rand()
// uniform in (0, 1]. Δ is how long the key's last load took (Entry.Cost),
// so a key that is slow to load starts earlier; β > 1 favours earlier
// refreshes, β < 1 later ones. The probability rises from nothing, far from
// expiry, to certainty at it: a hot key is reloaded once, shortly before
// it expires, and never misses; a cold key just expires.

// DefaultXFetchBeta is the β of the paper's experiments, and of `refresh:
// xfetch` without a beta.
const DefaultXFetchBeta = 1.0

// xfetchMaxFactor bounds −ln(rand()): rand.Float64 is a multiple of 2⁻⁵³,
// so 1 − rand.Float64() ≥ 2⁻⁵³ and −ln of it ≤ 53·ln 2 < 37. An entry with
// more life than Δ·β·37 is never refreshed: no random number is drawn.
const xfetchMaxFactor = 37

// xfetchDue reports whether a read of an entry with life left, whose value
// took cost to load, should refresh it now.
func xfetchDue(life, cost time.Duration, beta float64) bool {
	if cost <= 0 || life <= 0 {
		return false // never loaded and no measure of the namespace yet; or gone
	}
	scale := float64(cost) * beta
	if float64(life) > scale*xfetchMaxFactor {
		return false
	}
	return float64(life) <= scale*-math.Log(1-rand.Float64())
}

// LoadCost is a load's duration in 16 bits, so that it fits an Entry's
// padding: microseconds as an 11-bit mantissa and a 5-bit exponent, exact
// up to 2,047 µs and within 0.1% beyond, up to 51 days (longer saturates).
type LoadCost uint16

const (
	costMantissaBits = 11
	costMantissa     = 1<<costMantissaBits - 1
	costMaxExp       = 1<<(16-costMantissaBits) - 1
)

// CostOf encodes d, rounding down; durations under 1 µs are 0, which means
// unknown.
func CostOf(d time.Duration) LoadCost {
	us := d.Microseconds()
	if us <= 0 {
		return 0
	}
	exp := 0
	for us > costMantissa {
		us >>= 1
		exp++
	}
	if exp > costMaxExp {
		return LoadCost(costMaxExp<<costMantissaBits | costMantissa)
	}
	return LoadCost(exp<<costMantissaBits | int(us))
}

// Duration decodes c.
func (c LoadCost) Duration() time.Duration {
	return time.Duration(int64(c&costMantissa)<<(c>>costMantissaBits)) * time.Microsecond
}

// loadCostAvg is a namespace's moving average of its load durations: the
// Δ of entries that were written rather than loaded (a Set carries no
// measure of the key's recomputation), until a refresh measures theirs.
type loadCostAvg struct{ ns atomic.Int64 }

// observe folds one load's duration into the average, weighting it 1/8.
func (a *loadCostAvg) observe(d time.Duration) {
	for {
		old := a.ns.Load()
		next := int64(d)
		if old > 0 {
			next = old + (int64(d)-old)/8
		}
		if a.ns.CompareAndSwap(old, next) {
			return
		}
	}
}

func (a *loadCostAvg) get() time.Duration { return time.Duration(a.ns.Load()) }

// refreshDue reports whether a read of e, with life left, should start a
// background refresh, and whether XFetch (rather than the threshold) chose
// it.
func (n *Namespace) refreshDue(e Entry, life time.Duration) (due, early bool) {
	if !e.Found || e.TTL <= 0 {
		return false, false
	}
	switch {
	case n.p.XFetchBeta > 0:
		return xfetchDue(life, n.entryCost(e), n.p.XFetchBeta), true
	case n.p.RefreshAhead > 0:
		return life < time.Duration(float64(e.TTL)*(1-n.p.RefreshAhead)), false
	}
	return false, false
}

// refreshPossible reports whether a read of e could be due for a refresh
// at all: never when a refresh has just replaced it (a new TTL).
func (n *Namespace) refreshPossible(e Entry, life time.Duration) bool {
	if !e.Found || e.TTL <= 0 {
		return false
	}
	if n.p.XFetchBeta > 0 {
		return float64(life) <= float64(n.entryCost(e))*n.p.XFetchBeta*xfetchMaxFactor
	}
	return life < time.Duration(float64(e.TTL)*(1-n.p.RefreshAhead))
}

// entryCost is e's Δ: its own load's duration, or the namespace's average.
func (n *Namespace) entryCost(e Entry) time.Duration {
	if c := e.Cost.Duration(); c > 0 {
		return c
	}
	return n.cost.get()
}

// monoClock is the default Clock: monotonic nanoseconds since its start.
type monoClock struct{ base time.Time }

func (c monoClock) NowNano() int64 { return int64(time.Since(c.base)) }
