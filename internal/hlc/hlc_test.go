package hlc

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

func TestClock_MonotonicUnderConcurrencyAndFrozenWall(t *testing.T) {
	frozen := time.Unix(1_700_000_000, 0)
	c := &Clock{Wall: func() time.Time { return frozen }}
	const n, workers = 1000, 8
	seen := make(chan uint64, n*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range n {
				seen <- c.Now()
			}
		})
	}
	wg.Wait()
	close(seen)
	uniq := map[uint64]bool{}
	for v := range seen {
		if uniq[v] {
			t.Fatalf("version %d returned twice", v)
		}
		uniq[v] = true
	}
	if !Time(c.Now()).Equal(frozen) {
		t.Fatalf("Time = %v, want %v", Time(c.Now()), frozen)
	}
}

func TestClock_ObserveMovesPastAPeersVersion(t *testing.T) {
	behind := &Clock{Wall: func() time.Time { return time.Unix(100, 0) }}
	ahead := &Clock{Wall: func() time.Time { return time.Unix(100, 300_000_000) }} // 300 ms ahead: within the bound
	v := ahead.Now()
	if behind.Now() >= v {
		t.Fatal("test clocks not skewed")
	}
	if err := behind.Observe(v); err != nil {
		t.Fatal(err)
	}
	if got := behind.Now(); got <= v {
		t.Fatalf("after observing %d, Now = %d", v, got)
	}
}

func TestClock_ObserveRejectsAVersionTooFarAhead(t *testing.T) {
	wall := time.Unix(100, 0)
	c := &Clock{Wall: func() time.Time { return wall }}
	before := c.Now()
	for _, v := range []uint64{FromTime(wall.Add(time.Second)), math.MaxUint64 - 1, math.MaxUint64} {
		err := c.Observe(v)
		if !errors.Is(err, ErrTooFarAhead) {
			t.Fatalf("Observe(%d) = %v, want ErrTooFarAhead", v, err)
		}
	}
	if got := c.Now(); got != before+1 {
		t.Fatalf("a rejected version moved the clock: Now = %d after %d", got, before)
	}
	if c.Rejected() != 3 {
		t.Fatalf("Rejected = %d, want 3", c.Rejected())
	}
}

func TestClock_SaturatesInsteadOfWrapping(t *testing.T) {
	c := &Clock{}
	c.Seed(math.MaxUint64)
	for range 3 {
		if v := c.Now(); v != math.MaxUint64 {
			t.Fatalf("Now = %d after saturation, want MaxUint64", v)
		}
	}
}

func TestClock_FollowsWallTime(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &Clock{Wall: func() time.Time { return now }}
	a := c.Now()
	now = now.Add(time.Second)
	b := c.Now()
	if Time(b).Sub(Time(a)) != time.Second {
		t.Fatalf("versions %v apart, want 1s", Time(b).Sub(Time(a)))
	}
}

func TestClock_SendStaysWithinWhatPeersAccept(t *testing.T) {
	wall := time.Unix(100, 0)
	c := &Clock{Wall: func() time.Time { return wall }}
	c.Seed(FromTime(wall.Add(time.Hour))) // seeded past a version stamped an hour ahead
	peer := &Clock{Wall: func() time.Time { return wall }}
	if err := peer.Observe(c.Send()); err != nil {
		t.Fatalf("a peer refused the value Send gave: %v", err)
	}
	if v := c.Now(); v <= FromTime(wall.Add(time.Hour)) {
		t.Fatalf("Send moved the clock back: Now = %v", Time(v))
	}
	fresh := &Clock{Wall: func() time.Time { return wall }}
	if a, b := fresh.Send(), fresh.Now(); b != a+1 {
		t.Fatalf("Send on a clock at its wall time = %d, then Now = %d; want Now's value", a, b)
	}
}

func TestClock_AheadIsPastTheWallClockByMoreThanMaxOffset(t *testing.T) {
	wall := time.Unix(1_700_000_000, 0)
	c := &Clock{Wall: func() time.Time { return wall }, MaxOffset: 500 * time.Millisecond}
	for _, tc := range []struct {
		v    uint64
		want bool
	}{
		{FromTime(wall.Add(-time.Hour)), false},
		{FromTime(wall.Add(500 * time.Millisecond)), false},
		{FromTime(wall.Add(501 * time.Millisecond)), true},
		{math.MaxUint64, true},
	} {
		if got := c.Ahead(tc.v); got != tc.want {
			t.Errorf("Ahead(%v) = %v, want %v", Time(tc.v).Sub(wall), got, tc.want)
		}
	}
}
