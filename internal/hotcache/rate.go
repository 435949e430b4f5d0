package hotcache

import (
	"math"
	"sync/atomic"
	"time"
)

// rateSketch tells which keys are requested at least a given rate, in
// bounded memory and without locks: count-min sketches (sketchDepth rows of
// sketchWidth counters) of the current window and of the previous one. A
// key's rate is estimated over a sliding window, as the current window's
// count plus the previous window's weighted by the share of it still inside
// the sliding window.
//
// Counts are conservative (a request increments only the key's smallest
// counters, which keeps keys that share counters with busy ones from looking
// busy) and capped at twice the threshold, so a hot key stops writing to
// shared cache lines once it is clearly hot. Estimates only err upward
// (counters shared with other keys), so a key at the threshold rate is
// always found hot; a cold key looks hot only when this node forwards about
// sketchWidth times the threshold rate in all.
//
// Three tables rotate: the current, the previous and the one being cleared
// for the next window, so a reader never sees a table being cleared unless it
// stalled for a whole window (and then it merely underestimates).
type rateSketch struct {
	threshold uint32 // a key is hot at this estimated count per window
	cap       uint32 // counters stop here
	window    int64  // nanoseconds
	tables    [3]sketchTable
	cur       atomic.Uint32 // index of the current table
	start     atomic.Int64  // when the current window began, in ns of the caller's clock
}

const (
	sketchDepth = 4
	sketchWidth = 1 << 13
)

type sketchTable [sketchDepth * sketchWidth]atomic.Uint32

// newRateSketch returns a sketch that finds keys requested at least
// minRate times per second, counted over windows of the given length.
func newRateSketch(minRate float64, window time.Duration) *rateSketch {
	thr := math.Ceil(minRate * window.Seconds())
	thr = min(max(thr, 2), math.MaxUint32/4) // one request is no rate
	return &rateSketch{threshold: uint32(thr), cap: 2 * uint32(thr), window: int64(window)}
}

// slots returns the counter indexes of hash h, one per row (double hashing).
func slots(h uint64) [sketchDepth]uint32 {
	h1, h2 := uint32(h), uint32(h>>32)|1
	var s [sketchDepth]uint32
	for i := range s {
		s[i] = uint32(i)*sketchWidth + (h1+uint32(i)*h2)%sketchWidth
	}
	return s
}

func (t *sketchTable) count(s [sketchDepth]uint32) uint32 {
	c := uint32(math.MaxUint32)
	for _, i := range s {
		c = min(c, t[i].Load())
	}
	return c
}

// add counts one request of the key hashed to h at time now (nanoseconds on
// the clock rotate is given) and reports whether the key is hot.
func (r *rateSketch) add(h uint64, now int64) bool {
	s := slots(h)
	ci := r.cur.Load()
	cur, prev := &r.tables[ci], &r.tables[(ci+2)%3]
	c := cur.count(s)
	if c < r.cap {
		for _, i := range s {
			// Conservative update: raise only the smallest counters. A
			// lost race merely leaves a counter one lower.
			cur[i].CompareAndSwap(c, c+1)
		}
		c++
	}
	if c >= r.threshold {
		return true
	}
	p := prev.count(s)
	if c+p < r.threshold {
		return false
	}
	// The previous window counts for the part of it the sliding window
	// still covers.
	left := 1 - float64(now-r.start.Load())/float64(r.window)
	return float64(c)+float64(p)*min(max(left, 0), 1) >= float64(r.threshold)
}

// rotate starts a new window at now. One goroutine calls it, once per
// window.
func (r *rateSketch) rotate(now int64) {
	next := (r.cur.Load() + 1) % 3 // the oldest table: nobody reads it
	for i := range r.tables[next] {
		r.tables[next][i].Store(0)
	}
	r.start.Store(now)
	r.cur.Store(next)
}
