package node

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// versionsWriter records the versions a write-through namespace writes.
type versionsWriter struct {
	mu       sync.Mutex
	versions []uint64
}

func (w *versionsWriter) Write(_ context.Context, ws []strategy.Write) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range ws {
		w.versions = append(w.versions, x.Version)
	}
	return nil
}

func TestNode_RestartAfterTheWallClockSteppedBackStampsAboveEarlierVersions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	db := &versionsWriter{}
	run := func(clk Clock) {
		t.Helper()
		n, err := New(Config{
			Name: "solo", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", Clock: clk, ClockPath: path,
			Namespaces: []NamespaceSpec{{Policy: strategy.Policy{Name: "wt", Write: strategy.WriteThrough}, Writer: db}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Kill() // a crash: nothing is written on the way out
		if _, err := n.CacheServer().Set(context.Background(), &pb.SetRequest{Namespace: "wt", Key: "k", Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	ahead := testclock.New()
	ahead.Advance(time.Hour) // the wall clock is an hour ahead...
	run(ahead)
	run(testclock.New()) // ...and is put right before the restart
	if len(db.versions) != 2 || db.versions[1] <= db.versions[0] {
		t.Fatalf("versions written %v: the write after the restart (%v) is not above the one before it (%v)",
			db.versions, hlc.Time(db.versions[len(db.versions)-1]), hlc.Time(db.versions[0]))
	}
}
