package daemon

import (
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
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
