// Package hlc is a hybrid logical clock: versions that follow wall time in
// milliseconds, never repeat or go backwards on one node, and move past any
// version the node has seen from a peer. Write-behind and write-through tag
// each write with one, so the database keeps the newest write of a key even
// when writes of the key reach it out of order or from two owners.
//
// A peer's version is trusted only within MaxOffset of this node's wall
// clock: a forged or broken peer clock far in the future would otherwise
// make every later write of every key lose to older ones. Observe rejects
// such a version (and counts it) instead of adopting it. The clock
// saturates at its largest value rather than wrap to zero.
//
// A clock may run ahead of its own wall clock: Seed moves it past versions
// this node stamped before a restart (a Mark persists them) or past a newer
// version the database holds. Send gives peers a value they accept even
// then, and Ahead tells a version no healthy clock can have stamped yet.
package hlc

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// logicalBits is the room for writes within one millisecond.
const logicalBits = 16

// DefaultMaxOffset is the default bound on how far ahead of the local wall
// clock a peer's version may be.
const DefaultMaxOffset = 500 * time.Millisecond

// ErrTooFarAhead is returned by Observe for a version more than MaxOffset
// ahead of the wall clock.
var ErrTooFarAhead = errors.New("peer clock too far ahead")

// Clock is safe for concurrent use. The zero value uses the wall clock and
// DefaultMaxOffset.
type Clock struct {
	// Wall is the physical time source; nil means time.Now.
	Wall func() time.Time
	// MaxOffset bounds how far ahead of Wall an observed version may be;
	// 0 means DefaultMaxOffset.
	MaxOffset time.Duration

	mu       sync.Mutex
	last     uint64
	rejected atomic.Uint64
	// mark, once OpenMark set it, persists a ceiling above every version
	// Now returns; ceiling is the one persisted (both under mu).
	mark    *Mark
	ceiling uint64
}

func (c *Clock) wall() uint64 {
	w := time.Now
	if c.Wall != nil {
		w = c.Wall
	}
	return FromTime(w())
}

// Now returns a version greater than every version this clock returned or
// observed before (until the clock saturates at math.MaxUint64, which a
// wall clock in milliseconds reaches in the year 10 million).
func (c *Clock) Now() uint64 {
	pt := c.wall()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case pt > c.last:
		c.last = pt
	case c.last < math.MaxUint64:
		c.last++
	}
	if c.mark != nil {
		c.ceiling = c.mark.cover(c.last, c.ceiling)
	}
	return c.last
}

// Send returns a version for a peer: Now, but at most half of MaxOffset
// past the wall clock, so that a peer (which refuses a value more than
// MaxOffset ahead of its own wall clock) accepts it while this clock runs
// ahead of its wall clock, seeded past its own earlier versions or the
// database's. The peer then does not order its later versions after this
// clock's, as if it had refused the value; the database's version guard
// and its stale-write detection order such writes instead.
func (c *Clock) Send() uint64 {
	v := c.Now()
	return min(v, sat(c.wall(), uint64(c.offset().Milliseconds()/2)<<logicalBits))
}

// Ahead reports whether v is more than MaxOffset past the wall clock: no
// clock that keeps to its wall clock can have stamped it yet.
func (c *Clock) Ahead(v uint64) bool {
	return v > sat(c.wall(), uint64(c.offset().Milliseconds())<<logicalBits)
}

func (c *Clock) offset() time.Duration {
	if c.MaxOffset <= 0 {
		return DefaultMaxOffset
	}
	return c.MaxOffset
}

// sat returns a+b, or math.MaxUint64 when that overflows.
func sat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// Observe moves the clock past v, a version seen from a peer, unless v is
// more than MaxOffset ahead of the wall clock: then it returns an error
// wrapping ErrTooFarAhead and leaves the clock alone.
func (c *Clock) Observe(v uint64) error {
	offset := c.offset()
	wall := c.wall()
	if v > sat(wall, uint64(offset.Milliseconds())<<logicalBits) {
		c.rejected.Add(1)
		return fmt.Errorf("%w: version at %s is %v past this node's clock (at most %v allowed)",
			ErrTooFarAhead, Time(v).UTC().Format(time.RFC3339Nano), Time(v).Sub(Time(wall)).Round(time.Millisecond), offset)
	}
	c.Seed(v)
	return nil
}

// Seed moves the clock to v, however far ahead, so that every later Now
// exceeds it: a version this node stamped itself before (its journal's, or
// its persisted Mark), or one the database holds for a key that a write of
// this node must replace.
func (c *Clock) Seed(v uint64) {
	c.mu.Lock()
	if v > c.last {
		c.last = v
	}
	c.mu.Unlock()
}

// Rejected counts the versions Observe refused.
func (c *Clock) Rejected() uint64 { return c.rejected.Load() }

// FromTime returns the version of wall time t with no logical part.
func FromTime(t time.Time) uint64 { return uint64(t.UnixMilli()) << logicalBits }

// Time returns the wall time a version was taken at (to the millisecond).
func Time(v uint64) time.Time { return time.UnixMilli(int64(v >> logicalBits)) }
