package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/ringcache/ringcache/internal/pgtest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// A node paused past its failure detection (SIGSTOP: a long GC pause, a
// frozen VM) wakes up with its table and its cache as they were. Meanwhile
// its peers took its keys over and a key it owned was written through
// another node. Once the cluster has it back, no node may answer the value
// the paused node cached before the pause: it drops its cache when it
// installs the table that takes it back (engine.Rejoined), whether or not a
// peer's Peer.Merged announcement has reached it yet, and before that, from
// its wake on, it serves nothing cached before the pause (its stall watch).
// Nor does it take a write of the key as its owner while the others route
// the key elsewhere: on waking it asks them for their table, and while
// they route without it, it sends its clients' ops to their owners by it.
func TestPause_ANodeBackFromAPauseServesNoValueCachedBeforeIt(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1", "n2", "n3")
	n1, n3 := f.all[0], f.all[2]
	cfg := f.writeConfig("pause.yaml", fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  wt: {backend: main, read: through, write: through, ttl: 1h}
`, dsn))
	// n1 first: the oldest member coordinates the table, and the paused
	// node must be another.
	f.launch(cfg, []string{n1.gossipAddr}, n1) // its own seed: it starts the cluster
	f.waitUp(1, n1)
	f.launch(cfg, nil, f.all[1:]...)
	f.waitUp(3, f.all...)

	key := keyOwnedBy(t, f, n1.grpcAddr, "wt", "n3")
	conns := dial(t, f.all...)
	c1, c3 := conns[0], conns[2]
	ctx := context.Background()
	if _, err := c3.cache.Set(ctx, &pb.SetRequest{Namespace: "wt", Key: key, Value: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if r, err := c3.cache.Get(ctx, &pb.GetRequest{Namespace: "wt", Key: key}); err != nil || string(r.Value) != "before" {
		t.Fatalf("Get %s through its owner n3 = %v, %v; want before", key, r, err)
	}

	if err := n3.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer n3.cmd.Process.Signal(syscall.SIGCONT)
	eventually(t, formTimeout, "n1 and n2 take n3 out of their rings", func() error {
		for _, p := range f.all[:2] {
			var r ringJSON
			if _, err := f.ctlJSONErr(p.grpcAddr, &r, "ring"); err != nil {
				return err
			}
			if len(r.Members) != 2 {
				return fmt.Errorf("%s's ring has %d members", p.name, len(r.Members))
			}
		}
		return nil
	})
	if _, err := c1.cache.Set(ctx, &pb.SetRequest{Namespace: "wt", Key: key, Value: []byte("during")}); err != nil {
		t.Fatalf("Set %s through n1 while n3 is paused: %v", key, err)
	}

	if err := n3.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// At once, before the table that takes n3 back can reach it: n3 still
	// routes by its table from before the pause and owns the key, but its
	// stall watch hides what it cached before serving (engine.WatchStalls).
	if r, err := c3.cache.Get(ctx, &pb.GetRequest{Namespace: "wt", Key: key}); err == nil && string(r.Value) != "during" {
		t.Fatalf("Get %s through n3 right after its wake = %q; want during, written while it was paused", key, r.Value)
	}
	// A write through n3 then, which it would take as the key's owner while
	// n1 and n2 route the key elsewhere and read it there: n3 asked them
	// for their table on waking, and until one takes it back it sends its
	// clients' ops to their owners by theirs.
	want := "woken"
	if _, err := c3.cache.Set(ctx, &pb.SetRequest{Namespace: "wt", Key: key, Value: []byte(want)}); err != nil {
		t.Fatalf("Set %s through n3 right after its wake: %v", key, err)
	}
	if r, err := c1.cache.Get(ctx, &pb.GetRequest{Namespace: "wt", Key: key}); err != nil || string(r.Value) != want {
		t.Fatalf("Get %s through n1 right after n3's wake = %q, %v; want %s", key, r.GetValue(), err, want)
	}
	f.waitUp(3, f.all...)
	// waitUp passes on n3's own table, which has 3 members since before
	// the pause: wait until it routes by the table that took it back.
	eventually(t, formTimeout, "every node to route by one table", func() error {
		versions := map[uint64][]string{}
		for _, p := range f.all {
			var r ringJSON
			if _, err := f.ctlJSONErr(p.grpcAddr, &r, "ring"); err != nil {
				return err
			}
			versions[r.Version] = append(versions[r.Version], p.name)
		}
		if len(versions) != 1 {
			return fmt.Errorf("table versions: %v", versions)
		}
		return nil
	})
	for _, c := range conns {
		r, err := c.cache.Get(ctx, &pb.GetRequest{Namespace: "wt", Key: key})
		if err != nil || string(r.Value) != want {
			t.Fatalf("Get %s through %s once n3 is back = %q, %v; want %s", key, c.name, r.GetValue(), err, want)
		}
	}
	log := n3.log()
	if !strings.Contains(log, "this node is back in a table computed from one without it") {
		t.Fatalf("n3 did not drop its cache when it installed the table that took it back:\n%s", log)
	}
	if !strings.Contains(log, "this process was stopped for longer than its peers take to suspect it") {
		t.Fatalf("n3's stall watch did not notice the pause:\n%s", log)
	}
}

// keyOwnedBy finds a key of ns that owner owns, as the node at addr routes.
func keyOwnedBy(t *testing.T, f *fleet, addr, ns, owner string) string {
	t.Helper()
	for k := range 1000 {
		key := fmt.Sprintf("%s-%d", ns, k)
		var l locateJSON
		f.ctlJSON(addr, &l, "locate", ns, key)
		if l.Owner == owner {
			return key
		}
	}
	t.Fatalf("no key of %s owned by %s", ns, owner)
	return ""
}
