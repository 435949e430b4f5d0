package hlc

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// wallAt is a settable wall clock for a Clock.
type wallAt struct{ ns atomic.Int64 }

func newWall(t time.Time) *wallAt { w := &wallAt{}; w.set(t); return w }
func (w *wallAt) set(t time.Time) { w.ns.Store(t.UnixNano()) }
func (w *wallAt) now() time.Time  { return time.Unix(0, w.ns.Load()) }

func openMark(t *testing.T, c *Clock, path string) *Mark {
	t.Helper()
	m, err := OpenMark(c, path, MarkOptions{Window: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMark_RestartAfterTheWallClockSteppedBackStampsAboveEarlierVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	wall := newWall(time.Unix(1_700_000_000, 0).Add(time.Hour)) // an hour ahead
	c := &Clock{Wall: wall.now}
	m := openMark(t, c, path)
	var last uint64
	for range 100 {
		last = c.Now()
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	wall.set(time.Unix(1_700_000_000, 0)) // the wall clock is put right, the node restarts
	restarted := &Clock{Wall: wall.now}
	start := time.Now()
	openMark(t, restarted, path)
	if waited := time.Since(start); waited > 100*time.Millisecond {
		t.Errorf("OpenMark waited %v for a wall clock an hour behind its mark; it must seed instead", waited)
	}
	if v := restarted.Now(); v <= last {
		t.Fatalf("after the restart Now = %v, not above %v stamped before it", Time(v), Time(last))
	}
}

func TestMark_PersistsACeilingBeforeNowPassesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	wall := newWall(time.Unix(1_700_000_000, 0))
	c := &Clock{Wall: wall.now}
	openMark(t, c, path) // Run is not running: every renewal is Now's own
	c.Seed(FromTime(wall.now().Add(24 * time.Hour)))
	v := c.Now()
	for i := range 3 {
		wall.set(wall.now().Add(time.Second))
		if got := readCeiling(t, path); got < v {
			t.Fatalf("round %d: the file holds %v, below the version %v already handed out", i, Time(got), Time(v))
		}
		v = c.Now()
	}
}

func TestMark_RunRenewsAheadOfTheClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	wall := newWall(time.Unix(1_700_000_000, 0))
	c := &Clock{Wall: wall.now}
	m := openMark(t, c, path)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); m.Run(stop) }()
	defer func() { close(stop); <-done }()
	v := c.Now() // writes the first ceiling itself
	first := m.Ceiling()
	wall.set(wall.now().Add(150 * time.Millisecond)) // within half a window of the ceiling
	v = c.Now()
	deadline := time.Now().Add(10 * time.Second)
	for m.Ceiling() == first {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not renew the ceiling %v with the clock at %v", Time(first), Time(v))
		}
		time.Sleep(time.Millisecond)
	}
	if got := m.Ceiling(); got < v+m.window/2 {
		t.Fatalf("renewed ceiling %v is less than half a window past the clock %v", Time(got), Time(v))
	}
}

func TestMark_QuickRestartWaitsForTheWallClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	c := &Clock{}
	m := openMark(t, c, path)
	last := c.Now() // persists last + 200 ms
	m.Close()
	restarted := &Clock{}
	openMark(t, restarted, path)
	if now := FromTime(time.Now()); now < m.Ceiling() {
		t.Fatalf("OpenMark returned at %v, before the stored ceiling %v", Time(now), Time(m.Ceiling()))
	}
	if v := restarted.Now(); v <= last {
		t.Fatalf("Now = %d after a restart, not above %d", v, last)
	}
}

func TestMark_ATornSlotLeavesThePreviousCeiling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	wall := newWall(time.Unix(1_700_000_000, 0))
	c := &Clock{Wall: wall.now}
	m := openMark(t, c, path)
	c.Now()
	first := m.Ceiling()
	wall.set(wall.now().Add(time.Minute))
	c.Now() // the second slot
	m.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xde, 0xad}, markSlot+3); err != nil { // tear the newer slot
		t.Fatal(err)
	}
	f.Close()
	if got := readCeiling(t, path); got != first {
		t.Fatalf("with the newer slot torn, the ceiling read is %v, want the older %v", Time(got), Time(first))
	}

	if err := os.WriteFile(path, []byte("garbage garbage garbage garbage!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenMark(&Clock{}, path, MarkOptions{}); !errors.Is(err, ErrMarkCorrupt) {
		t.Fatalf("OpenMark of a file with no valid slot = %v, want ErrMarkCorrupt", err)
	}
}

// readCeiling opens the mark at path with a clock far ahead of it, so
// OpenMark does not wait, and returns the stored ceiling.
func readCeiling(t *testing.T, path string) uint64 {
	t.Helper()
	c := &Clock{Wall: func() time.Time { return time.Unix(4_000_000_000, 0) }}
	m, err := OpenMark(c, path, MarkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Ceiling()
}
