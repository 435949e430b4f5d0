package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Warm hand-over with real ringcached processes and SQLite: a 3-node
// cluster serves a read-through load over hotKeys keys, a 4th node joins,
// and the database loads the move causes are counted (the backend_loads
// of every node, after minus before). With the hand-over the new owner
// pulls the previous owners' entries, so the moved hot keys cost the
// database (almost) nothing; with --warm-handover=false every moved key
// the load touches is loaded again. Both figures are logged for
// docs/benchmarks.md ("Scale-out: database loads with and without warm
// hand-over").

const warmHotKeys = 2000

func TestWarmHandover_ScaleOutLoadsFewMovedKeysFromTheDatabase(t *testing.T) {
	moved, loads := scaleOutUnderLoad(t, true)
	t.Logf("FIGURE warm hand-over on: %d moved hot keys, %d database loads caused by the move (%.1f%%)", moved, loads, 100*float64(loads)/float64(moved))
	if moved < warmHotKeys/8 {
		t.Fatalf("only %d of %d keys moved to the 4th node; the test measures nothing", moved, warmHotKeys)
	}
	// The target, at most 5 %, is a figure (docs/benchmarks.md): how many
	// keys are read in the moment when rings disagree depends on timing
	// (0-2.3 % in 50 runs alone). What the hand-over must always do is
	// spare most moved keys a load; without it every one is loaded again
	// (the next test). About one run in fifteen loaded 27-61 % until a
	// node's pull of a startup table's partitions stopped taking the
	// entries held for the new node (docs/architecture.md, Warm
	// hand-over).
	if limit := moved / 4; loads > limit {
		t.Fatalf("the scale-out caused %d database loads for %d moved hot keys, want at most %d (a quarter; the target is 5%%)", loads, moved, limit)
	}
}

func TestWarmHandover_OffLoadsTheMovedKeysAgain(t *testing.T) {
	moved, loads := scaleOutUnderLoad(t, false)
	t.Logf("FIGURE warm hand-over off: %d moved hot keys, %d database loads caused by the move (%.1f%%)", moved, loads, 100*float64(loads)/float64(moved))
	// Every moved key is read after the move, and without the hand-over
	// its new owner has nothing cached.
	if loads < moved {
		t.Fatalf("without hand-over the scale-out caused %d database loads for %d moved hot keys, want at least one per moved key", loads, moved)
	}
}

// scaleOutUnderLoad runs the scenario and returns how many of the hot keys
// moved to the new node and how many database loads the cluster made
// from the join until every hot key had been read twice more.
func scaleOutUnderLoad(t *testing.T, warm bool) (moved, loads int) {
	f := newFleet(t, "n1", "n2", "n3", "n4")
	db := filepath.Join(f.dir, "app.db")
	if out, err := exec.Command(demoseedBin, "-db", db, "-rows", strconv.Itoa(warmHotKeys)).CombinedOutput(); err != nil {
		t.Fatalf("demoseed: %v\n%s", err, out)
	}
	config := f.writeConfig("ringcache.yaml", fmt.Sprintf(testConfig, db))
	if !warm {
		f.nodeFlags = []string{"--warm-handover=false"}
	}
	first := f.all[:3]
	f.launch(config, f.gossip[:3], first...)
	f.waitUp(3, first...)
	conns := dial(t, first...)
	// Up is not yet routing alike: a node still on an earlier table would
	// forward keys to a node that does not own them in the final one, and
	// their reloads would be counted as the scale-out's.
	sameTable(t, conns, 3)

	keys := make([]string, warmHotKeys)
	for i := range keys {
		keys[i] = strconv.Itoa(i + 1)
	}
	readAll(t, conns[0], keys) // every hot key is cached on its owner
	if got := totalLoads(t, conns); got != warmHotKeys {
		t.Fatalf("%d database loads to warm %d keys, want one each", got, warmHotKeys)
	}

	// The read load: every client goroutine reads random hot keys through
	// the three first nodes for the whole test.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var failed atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[g%len(conns)]
			for ctx.Err() == nil {
				k := keys[rand.IntN(len(keys))]
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if _, err := c.cache.Get(cctx, &pb.GetRequest{Namespace: "users", Key: k}); err != nil && ctx.Err() == nil {
					failed.Add(1)
				}
				cancel()
			}
		}()
	}
	before := totalLoads(t, conns)

	f.launch(config, f.gossip[:3], f.all[3])
	f.waitUp(4, f.all...)
	all := append(conns, dial(t, f.all[3])...)
	sameTable(t, all, 4)
	// Twice more over every hot key, on top of the random load.
	readAll(t, all[3], keys)
	readAll(t, all[1], keys)
	stop()
	wg.Wait()
	loads = totalLoads(t, all) - before
	if n := failed.Load(); n > 0 {
		t.Errorf("%d Gets of the read load failed during the scale-out", n)
	}
	for _, k := range keys {
		l, err := all[0].admin.Locate(context.Background(), &pb.LocateRequest{Namespace: "users", Key: k})
		if err != nil {
			t.Fatal(err)
		}
		if l.Owner == "n4" {
			moved++
		}
	}
	return moved, loads
}

// readAll reads every key through c and checks the values.
func readAll(t *testing.T, c *nodeConn, keys []string) {
	t.Helper()
	for i := 0; i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := c.cache.GetMany(ctx, &pb.GetManyRequest{Namespace: "users", Keys: batch})
		cancel()
		if err != nil {
			t.Fatalf("GetMany through %s: %v", c.name, err)
		}
		for j, r := range resp.Results {
			id, _ := strconv.Atoi(batch[j])
			if r.ErrorCode != 0 || !r.Found || string(r.Value) != profile(id) {
				t.Fatalf("users/%s through %s: found %v, %q, error %d %s", batch[j], c.name, r.Found, r.Value, r.ErrorCode, r.ErrorMessage)
			}
		}
	}
}

// totalLoads sums the users namespace's database loads over the nodes.
func totalLoads(t *testing.T, conns []*nodeConn) int {
	t.Helper()
	total := 0
	for _, c := range conns {
		s, err := c.admin.Stats(context.Background(), &pb.StatsRequest{})
		if err != nil {
			t.Fatalf("stats of %s: %v", c.name, err)
		}
		for _, ns := range s.Namespaces {
			if ns.Name == "users" {
				total += int(ns.Loads)
			}
		}
	}
	return total
}

// sameTable waits until every node of conns routes by one table of
// members members.
func sameTable(t *testing.T, conns []*nodeConn, members int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("every node routes by the same %d-member table", members), func() error {
		var first uint64
		for i, c := range conns {
			r, err := c.admin.Ring(context.Background(), &pb.RingRequest{})
			if err != nil {
				return err
			}
			if len(r.Members) != members {
				return fmt.Errorf("%s routes by %d members", c.name, len(r.Members))
			}
			if i == 0 {
				first = r.Version
			} else if r.Version != first {
				return fmt.Errorf("%s routes by table %d, %s by %d", c.name, r.Version, conns[0].name, first)
			}
		}
		return nil
	})
}
