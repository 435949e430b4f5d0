package testclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/ringcache/ringcache/internal/testclock"
)

var _ otter.Clock = (*testclock.Clock)(nil)

func TestClock_StartsAtWallTimeInUnixNanos(t *testing.T) {
	before := time.Now().UnixNano()
	c := testclock.New()
	after := time.Now().UnixNano()
	if got := c.NowNano(); got < before || got > after {
		t.Fatalf("NowNano = %d, want within [%d, %d]", got, before, after)
	}
}

func TestClock_MovesOnlyOnAdvance(t *testing.T) {
	c := testclock.New()
	start := c.NowNano()
	if got := c.NowNano(); got != start {
		t.Fatalf("clock moved without Advance: %d -> %d", start, got)
	}
	c.Advance(90 * time.Second)
	if got, want := c.NowNano()-start, int64(90*time.Second); got != want {
		t.Fatalf("advanced by %d ns, want %d", got, want)
	}
	if got := c.Now().UnixNano(); got != c.NowNano() {
		t.Fatalf("Now() = %d, NowNano() = %d", got, c.NowNano())
	}
}

func TestClock_TickIsNil(t *testing.T) {
	if ch := testclock.New().Tick(time.Second); ch != nil {
		t.Fatal("Tick returned a non-nil channel; a fake clock must not tick")
	}
}

func TestClock_ConcurrentAdvanceIsNotLost(t *testing.T) {
	c := testclock.New()
	start := c.NowNano()
	const goroutines, steps = 8, 1000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range steps {
				c.Advance(time.Millisecond)
				_ = c.NowNano()
			}
		})
	}
	wg.Wait()
	if got, want := c.NowNano()-start, int64(goroutines*steps)*int64(time.Millisecond); got != want {
		t.Fatalf("advanced by %d ns, want %d", got, want)
	}
}

func TestClock_NegativeAdvancePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1) did not panic")
		}
	}()
	testclock.New().Advance(-1)
}
