package strategy

import (
	"fmt"
	"testing"
)

// tombstones returns a flush state of n prefix flushes, prefix(i) each.
func tombstones(n int, prefix func(i int) string) *flushState {
	s := &flushState{}
	for i := range n {
		s.seq++
		s.tombs = append(s.tombs, tomb{prefix: prefix(i), seq: s.seq})
	}
	s.index()
	return s
}

// The index by prefix length answers as the scan does.
func TestFlushState_IndexAgreesWithTheScan(t *testing.T) {
	for name, prefix := range map[string]func(int) string{
		"one length":  func(i int) string { return fmt.Sprintf("t%02d:", i) },
		"two lengths": func(i int) string { return fmt.Sprintf("%0*d", 2+i%2, i%10) },
		"repeated":    func(i int) string { return fmt.Sprintf("t%d:", i%5) },
	} {
		indexed := tombstones(MaxPrefixTombstones, prefix)
		if indexed.byLen == nil {
			t.Fatalf("%s: no index", name)
		}
		scanned := *indexed
		scanned.byLen = nil
		for _, key := range []string{"t03:x", "t3:", "t4:y", "07", "007", "x", "", "t63:", "008x"} {
			for epoch := range uint32(MaxPrefixTombstones + 1) {
				if a, b := indexed.visible(key, epoch), scanned.visible(key, epoch); a != b {
					t.Fatalf("%s: visible(%q, %d) = %v indexed, %v scanned", name, key, epoch, a, b)
				}
			}
		}
	}
}

// The cost of visibility per read: an entry written since the newest flush
// (one comparison), and an entry older than MaxPrefixTombstones prefix
// tombstones that match none of them (the worst case), with the prefixes
// of one length (indexed) and of 64 lengths (scanned).
func BenchmarkFlushState_Visible(b *testing.B) {
	oneLength := tombstones(MaxPrefixTombstones, func(i int) string { return fmt.Sprintf("tenant%02d:", i) })
	manyLengths := tombstones(MaxPrefixTombstones, func(i int) string { return fmt.Sprintf("t%0*d", i+1, 0) })
	key := "customer:12345"
	for name, c := range map[string]struct {
		s     *flushState
		epoch uint32
	}{
		"newer-than-every-flush":              {oneLength, oneLength.seq},
		"older-than-64-tombstones-1-length":   {oneLength, 0},
		"older-than-64-tombstones-64-lengths": {manyLengths, 0},
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if !c.s.visible(key, c.epoch) {
					b.Fatal("hidden")
				}
			}
		})
	}
}
