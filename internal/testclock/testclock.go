// Package testclock provides a manually advanced clock for tests of TTL
// and expiry. It implements otter.Clock (and so store.Clock).
package testclock

import (
	"sync/atomic"
	"time"
)

// Clock is a fake clock that moves only when Advance is called. It counts
// nanoseconds since the Unix epoch, starting at the wall time of New, so code
// that expects otter's default unix-nanos scale keeps working. It is safe for
// concurrent use.
type Clock struct {
	now atomic.Int64
}

// New returns a Clock set to the current wall time.
func New() *Clock {
	c := &Clock{}
	c.now.Store(time.Now().UnixNano())
	return c
}

// NowNano returns the clock's current time in nanoseconds since the Unix epoch.
func (c *Clock) NowNano() int64 { return c.now.Load() }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.now.Load()) }

// Tick returns nil: a fake clock never ticks, so the cache does no periodic
// clean-up and expiry is observed on reads only.
func (c *Clock) Tick(time.Duration) <-chan time.Time { return nil }

// Advance moves the clock forward by d. A negative d panics: time does not
// run backwards.
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("testclock: negative Advance")
	}
	c.now.Add(int64(d))
}
