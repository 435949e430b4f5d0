package admin

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestProcessRSS_IsTheResidentSetOfThisProcess(t *testing.T) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := processRSS()
	// The heap in use is resident, the runtime's total reservation bounds it.
	if rss < ms.HeapInuse/2 || rss > ms.Sys+64<<20 {
		t.Fatalf("RSS %d bytes; heap in use %d, runtime reserves %d", rss, ms.HeapInuse, ms.Sys)
	}
}

func TestMemoryLimit_ZeroWhenUnset(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	debug.SetMemoryLimit(96 << 20)
	if got := memoryLimit(); got != 96<<20 {
		t.Fatalf("memoryLimit = %d, want 96 MiB", got)
	}
	debug.SetMemoryLimit(1<<63 - 1)
	if got := memoryLimit(); got != 0 {
		t.Fatalf("memoryLimit = %d with no limit, want 0", got)
	}
}
