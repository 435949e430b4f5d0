package daemon

import (
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/dustin/go-humanize"
)

// minMemoryHeadroom is what a node needs beyond its caches at the least:
// the Go runtime, gRPC and gossip buffers, telemetry.
const minMemoryHeadroom = 64 << 20

// memoryLimit returns the Go memory limit (GOMEMLIMIT) for a node whose
// store is bounded by maxMem and hot cache by hot: the caches, plus a
// quarter of them (at least 64 MiB) for everything else and for the
// garbage collector to work in. Without a limit the collector lets the
// heap grow to twice the live data (GOGC=100), so a full 32 MiB store
// made an RSS of 155-175 MB.
func memoryLimit(maxMem, hot uint64) int64 {
	caches := maxMem + hot
	if caches < maxMem || caches > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return int64(caches + max(minMemoryHeadroom, caches/4))
}

// applyMemoryLimit sets the Go memory limit from the caches' bounds,
// unless the environment sets GOMEMLIMIT (the runtime has applied it
// then), and logs the limit in force.
func applyMemoryLimit(log *slog.Logger, maxMem, hot uint64, getenv func(string) string) {
	if env := getenv("GOMEMLIMIT"); env != "" {
		log.Info("memory limit from the environment", "GOMEMLIMIT", env)
		return
	}
	limit := memoryLimit(maxMem, hot)
	debug.SetMemoryLimit(limit)
	log.Info("memory limit", "GOMEMLIMIT", humanize.IBytes(uint64(limit)),
		"from", "--max-memory + --hot-cache-bytes + max(64 MiB, 25%)")
}

// gcHeapFloor is the smallest heap goal the garbage collector is kept to:
// the headroom the memory limit grants at the least (minMemoryHeadroom).
//
// With GOGC=100 the collector runs each time the heap has grown by the
// live data. A node whose cache holds little (a small or a new one: 11 MiB
// live under BENCHMARKS.md's 100k keys) then collects every few MiB it
// allocates, three times a second under the 50-caller load, and the
// collector took a sixth of its CPU. Keeping the goal at 64 MiB or more
// cut the node's CPU per op by about 10 %. A full cache is unaffected: its
// goal is above the floor already, and the memory limit bounds the heap
// either way.
const gcHeapFloor = minMemoryHeadroom

// maxGCPercent bounds the GOGC keepGCFloor sets, for a nearly empty heap.
const maxGCPercent = 10000

// gcPercentFor returns the GOGC that keeps the heap goal of live bytes of
// live data (live × (1 + GOGC/100)) at floor or above, and base when base
// does already.
func gcPercentFor(live, floor uint64, base int) int {
	live = max(live, 1)
	if live*uint64(100+base)/100 >= floor {
		return base
	}
	return int(min((floor-live)*100/live+1, maxGCPercent))
}

// keepGCFloor keeps the heap goal at floor or above (gcHeapFloor) by
// raising GOGC while the live heap is small, checked every second, until
// the returned stop is called, which restores GOGC. GOGC set in the
// environment is kept as it is.
func keepGCFloor(log *slog.Logger, floor uint64, getenv func(string) string) (stop func()) {
	if env := getenv("GOGC"); env != "" {
		log.Info("garbage collection target from the environment", "GOGC", env)
		return func() {}
	}
	const base = 100
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}
		for {
			metrics.Read(s)
			// GOGC changes only by a tenth or more, as the live heap moves
			// a little at every collection. The live heap is 0 until the
			// first collection: GOGC stays until it is known, or a first
			// goal far above the floor would grow the heap through fresh
			// pages.
			live, cur := s[0].Value.Uint64(), int(s[1].Value.Uint64())
			if p := gcPercentFor(live, floor, base); live > 0 && p != cur && (p == base || p*10 < cur*9 || p*10 > cur*11) {
				debug.SetGCPercent(p)
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	log.Info("garbage collection target", "GOGC", base, "heap goal at least", humanize.IBytes(floor))
	return func() {
		close(quit)
		<-done
		debug.SetGCPercent(base)
	}
}
