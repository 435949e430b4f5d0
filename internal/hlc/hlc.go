// Package hlc is a hybrid logical clock: versions that follow wall time in
// milliseconds, never repeat or go backwards on one node, and move past any
// version the node has seen from a peer. Write-behind and write-through tag
// each write with one, so the database keeps the newest write of a key even
// when writes of the key reach it out of order or from two owners.
package hlc

import (
	"sync"
	"time"
)

// logicalBits is the room for writes within one millisecond.
const logicalBits = 16

// Clock is safe for concurrent use. The zero value uses the wall clock.
type Clock struct {
	// Wall is the physical time source; nil means time.Now.
	Wall func() time.Time

	mu   sync.Mutex
	last uint64
}

// Now returns a version greater than every version this clock returned or
// observed before.
func (c *Clock) Now() uint64 {
	wall := time.Now
	if c.Wall != nil {
		wall = c.Wall
	}
	pt := uint64(wall().UnixMilli()) << logicalBits
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt > c.last {
		c.last = pt
	} else {
		c.last++
	}
	return c.last
}

// Observe moves the clock past v, a version seen from a peer.
func (c *Clock) Observe(v uint64) {
	c.mu.Lock()
	if v > c.last {
		c.last = v
	}
	c.mu.Unlock()
}

// Time returns the wall time a version was taken at (to the millisecond).
func Time(v uint64) time.Time { return time.UnixMilli(int64(v >> logicalBits)) }
