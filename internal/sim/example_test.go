package sim_test

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/ringcache/ringcache/internal/sim"
)

func ExampleRun() {
	// Three keys asked three times; values of 10 bytes unless a line says.
	trace, err := sim.ReadTrace(strings.NewReader("a\nb 500\nc\na\nb\nc\na\nb\nc\n"), sim.TraceOptions{ValueSize: 10})
	if err != nil {
		panic(err)
	}
	// 2 KiB holds them all, so only the first round misses; 100 bytes hold
	// none, as an entry weighs its key and value as allocated and
	// store.EntryOverhead (176 bytes).
	sizes := []sim.Size{{Bytes: 2048}, {Bytes: 100}}
	results, err := sim.Run(context.Background(), trace, sizes, sim.Config{})
	if err != nil {
		panic(err)
	}
	for _, r := range results {
		fmt.Printf("%s (%d B): %d hits, %d misses\n", r.Size, r.MaxBytes, r.Hits, r.Misses)
	}
	// Output:
	// 100 B (100 B): 0 hits, 9 misses
	// 2.0 KiB (2048 B): 6 hits, 3 misses
}

func ExampleKnee() {
	sizesMiB := []float64{1, 2, 4, 8, 16, 32, 64}
	hitRate := []float64{30, 55, 75, 85, 87, 88, 89}
	logSize := make([]float64, len(sizesMiB))
	for i, s := range sizesMiB {
		logSize[i] = math.Log2(s)
	}
	if i, ok := sim.Knee(logSize, hitRate); ok {
		fmt.Printf("knee at %v MiB: %v %% hits\n", sizesMiB[i], hitRate[i])
	}
	// Output: knee at 8 MiB: 85 % hits
}
