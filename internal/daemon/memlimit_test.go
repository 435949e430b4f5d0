package daemon

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestMemoryLimit_CachesPlusHeadroom(t *testing.T) {
	for _, tc := range []struct {
		maxMem, hot uint64
		want        int64
	}{
		{32 << 20, 0, 96 << 20},            // 64 MiB headroom at the least
		{256 << 20, 16 << 20, 340 << 20},   // 25 % of 272 MiB
		{8 << 30, 0, 10 << 30},             // 25 %
		{math.MaxUint64, 1, math.MaxInt64}, // no overflow
	} {
		if got := memoryLimit(tc.maxMem, tc.hot); got != tc.want {
			t.Errorf("memoryLimit(%d, %d) = %d, want %d", tc.maxMem, tc.hot, got, tc.want)
		}
	}
}

func TestApplyMemoryLimit_KeepsTheEnvironmentsGOMEMLIMIT(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.DiscardHandler)

	debug.SetMemoryLimit(123 << 20) // as the runtime set it from GOMEMLIMIT=123MiB
	applyMemoryLimit(log, 32<<20, 0, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "123MiB"
		}
		return ""
	})
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Fatalf("limit %d after applyMemoryLimit with GOMEMLIMIT set; the user's must stand", got)
	}
	applyMemoryLimit(log, 32<<20, 0, func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != 96<<20 {
		t.Fatalf("limit %d, want 96 MiB from --max-memory 32MiB", got)
	}
}

func TestGCPercentFor_KeepsTheHeapGoalAtTheFloor(t *testing.T) {
	const floor = 64 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{11 << 20, 482},   // 11 MiB × 5.82 ≥ 64 MiB
		{32 << 20, 100},   // twice 32 MiB is the floor
		{200 << 20, 100},  // a full cache: GOGC as it is
		{0, maxGCPercent}, // bounded
	} {
		got := gcPercentFor(tc.live, floor, 100)
		if got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live>>20, got, tc.want)
		}
		if goal := max(tc.live, 1) * uint64(100+got) / 100; goal < floor && got < maxGCPercent {
			t.Errorf("live %d MiB at GOGC %d: goal %d MiB is under the floor", tc.live>>20, got, goal>>20)
		}
	}
}

// readMetric returns the runtime metric named name.
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func TestKeepGCFloor_RaisesTheHeapGoalOfASmallHeapAndRestoresGOGC(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	const floor = 256 << 20 // far above this test process's live heap
	// Other tests' nodes set a memory limit, which caps the goal.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	runtime.GC()
	if goal := readMetric("/gc/heap/goal:bytes"); goal >= floor {
		t.Fatalf("heap goal %d MiB before: the test needs a smaller heap", goal>>20)
	}
	stop := keepGCFloor(log, floor, func(string) string { return "" })
	// The goal follows the live heap of the collection before: poll, as
	// the live heap of a test process moves.
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		goal := readMetric("/gc/heap/goal:bytes")
		if goal >= floor*9/10 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("heap goal %d MiB after 10 s, with the floor at %d MiB", goal>>20, floor>>20)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if p := readMetric("/gc/gogc:percent"); p != 100 {
		t.Errorf("GOGC %d after stop, want 100 again", p)
	}

	// GOGC from the environment stands.
	debug.SetGCPercent(50)
	defer debug.SetGCPercent(100)
	keepGCFloor(log, floor, func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})()
	if p := readMetric("/gc/gogc:percent"); p != 50 {
		t.Errorf("GOGC %d, want the environment's 50", p)
	}
}
