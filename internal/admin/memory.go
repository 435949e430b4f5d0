package admin

import (
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// processRSS returns the process's resident set size in bytes, 0 where the
// system does not say (no /proc).
func processRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// memoryLimit returns the Go runtime's soft memory limit (GOMEMLIMIT), 0
// when there is none.
func memoryLimit() uint64 {
	l := debug.SetMemoryLimit(-1) // -1 reads it
	if l <= 0 || l == math.MaxInt64 {
		return 0
	}
	return uint64(l)
}
