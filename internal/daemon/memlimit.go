package daemon

import (
	"log/slog"
	"math"
	"runtime/debug"

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
