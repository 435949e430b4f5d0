package node

import (
	"testing"

	"github.com/ringcache/ringcache/pkg/ring"
)

// A node learns it was left out of the cluster's table (paused or cut off
// past its failure detection, while its own table never changed) from the
// table it installs: that table was computed from one without it.
func TestWasLeftOut(t *testing.T) {
	of := func(names ...string) *ring.Ring {
		ms := make([]ring.Member, len(names))
		for i, n := range names {
			ms[i] = ring.Member{Name: n, Addr: n + ":1"}
		}
		r, err := ring.New(ring.Config{PartitionCount: 256}, ms, uint64(len(names)))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	abc, ab, bc := of("a", "b", "c"), of("a", "b"), of("b", "c")
	for _, tc := range []struct {
		name         string
		old, prev, r *ring.Ring
		want         bool
	}{
		{"paused past detection: the others routed without it", abc, bc, abc, true},
		{"a first table: a new process has nothing cached", nil, bc, abc, false},
		{"a table computed from its own", abc, abc, abc, false},
		{"no previous table known", abc, nil, abc, false},
		{"another member joins", ab, ab, abc, false},
		{"it is leaving: the new table lacks it", abc, abc, bc, false},
		{"it routed by a table without itself", bc, bc, abc, false},
	} {
		if got := wasLeftOut("a", tc.old, tc.prev, tc.r); got != tc.want {
			t.Errorf("%s: wasLeftOut = %v, want %v", tc.name, got, tc.want)
		}
	}
}
