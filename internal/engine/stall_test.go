package engine

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/logtest"
)

// A node whose process was stopped past its peers' failure detection
// serves nothing it cached before: the first op after the wake misses and
// loads again, once; an op after a gap shorter than the watch's serves
// the cache as usual.
func TestStall_AnOpAfterAStallServesNothingCachedBeforeIt(t *testing.T) {
	var loads int
	e := newWarmEngine(t, "a", &warmPeers{engines: map[string]*Engine{}}, &loads)
	w := logtest.NewWarnings(slog.NewTextHandler(io.Discard, nil))
	e.log = slog.New(w)
	e.SetRing(mustRing(t, members("a")))
	e.SetReady()
	ns, _ := e.Namespace("users")
	mustGetValue(t, ns, key(1), "db-"+key(1))
	e.WatchStalls(time.Second, StallHooks{}) // taken as minStallAfter
	if got := time.Duration(e.stall.after.Load()); got != minStallAfter {
		t.Fatalf("watching for stalls of %s, want the floor %s", got, minStallAfter)
	}
	get := func() {
		t.Helper()
		var res Result
		e.Execute(context.Background(), Caller{}, []Op{{Kind: Get, Namespace: "users", Key: key(1)}}, func(_ int, r Result) { res = r }, nil)
		if res.Err != nil || string(res.Value) != "db-"+key(1) {
			t.Fatalf("Get = %q, %v", res.Value, res.Err)
		}
	}
	get()
	if loads != 1 || e.stall.wakes.Load() != 0 {
		t.Fatalf("without a stall: %d loads, %d wakes; want the cached entry served", loads, e.stall.wakes.Load())
	}
	// The process was stopped: the watch's last tick is older than its gap.
	e.Stalled(minStallAfter + time.Second)
	get()
	if loads != 2 || e.stall.wakes.Load() != 1 {
		t.Fatalf("after a stall: %d loads, %d wakes; want the entry hidden and loaded again, one wake", loads, e.stall.wakes.Load())
	}
	get()
	if loads != 2 || e.stall.wakes.Load() != 1 {
		t.Fatalf("the op after: %d loads, %d wakes; want a hit", loads, e.stall.wakes.Load())
	}
	if msgs := w.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "stopped for longer than its peers take to suspect it") {
		t.Fatalf("warnings %q; want one about the stall", msgs)
	}
	// The watch notices a stall by itself too, with no op to see it.
	e.Stalled(minStallAfter + time.Second)
	waitFor(t, "the watch to notice the stall", func() bool { return e.stall.wakes.Load() == 2 })
	get()
	if loads != 3 {
		t.Fatalf("after a stall the watch noticed: %d loads, want 3", loads)
	}
}
