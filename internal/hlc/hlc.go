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
	return c.last
}

// Observe moves the clock past v, a version seen from a peer, unless v is
// more than MaxOffset ahead of the wall clock: then it returns an error
// wrapping ErrTooFarAhead and leaves the clock alone.
func (c *Clock) Observe(v uint64) error {
	offset := c.MaxOffset
	if offset <= 0 {
		offset = DefaultMaxOffset
	}
	wall := c.wall()
	if bound := wall + uint64(offset.Milliseconds())<<logicalBits; v > bound || bound < wall {
		c.rejected.Add(1)
		return fmt.Errorf("%w: version at %s is %v past this node's clock (at most %v allowed)",
			ErrTooFarAhead, Time(v).UTC().Format(time.RFC3339Nano), Time(v).Sub(Time(wall)).Round(time.Millisecond), offset)
	}
	c.Seed(v)
	return nil
}

// Seed moves the clock past v, a version this node stamped itself before
// (its journal's, or a persisted high-water mark), however far ahead.
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
