package store

import (
	"fmt"
	"runtime"
	"testing"
)

// Issue 13, break 7: --max-memory 32MiB gave an RSS of 155–175 MB, partly
// because an entry was charged 96 bytes of overhead and cost about 190. A
// full store's live heap must now be what it charges, within 10 %.
func TestStore_ChargeCoversTheHeap(t *testing.T) {
	const maxBytes = 8 << 20
	for _, size := range [][2]int{{8, 8}, {16, 16}, {20, 10}, {24, 100}, {40, 200}, {10, 1000}} {
		t.Run(fmt.Sprintf("key%d_value%d", size[0], size[1]), func(t *testing.T) {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			s, err := New(Config{MaxBytes: maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const prefix = "ns\x00" // as the node builds store keys
			for i := range 2 * maxBytes / (size[0] + size[1] + EntryOverhead) {
				key := prefix + fmt.Sprintf("%0*d", size[0]-len(prefix), i)
				s.Set(key, Entry{Value: make([]byte, size[1]), Found: true}) // as decoded from a request
			}
			s.c.CleanUp()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			st := s.Stats()
			heap := float64(ms.HeapAlloc) - float64(before)
			t.Logf("%d entries: charged %d bytes (%.0f each), heap %.0f bytes (%.0f each)",
				st.Entries, st.Bytes, float64(st.Bytes)/float64(st.Entries), heap, heap/float64(st.Entries))
			if ratio := heap / float64(st.Bytes); ratio > 1.10 || ratio < 0.75 {
				t.Fatalf("the heap holds %.2f× what the store charges; want within [0.75, 1.10]", ratio)
			}
			runtime.KeepAlive(s)
		})
	}
}

func TestCharge_RoundsToSizeClasses(t *testing.T) {
	for _, tc := range []struct{ key, value, want int }{
		{0, 0, EntryOverhead},
		{3, 1000, 8 + 1024 + EntryOverhead},
		{16, 16, 32 + EntryOverhead},
		{17, 33, 24 + 48 + EntryOverhead},
		{10, 40000, 16 + 40960 + EntryOverhead},
	} {
		if got := Charge(tc.key, tc.value); int(got) != tc.want {
			t.Errorf("Charge(%d, %d) = %d, want %d", tc.key, tc.value, got, tc.want)
		}
	}
}
