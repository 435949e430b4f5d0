package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/pgtest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Issue 13, break 2, on a real ringcached and a real PostgreSQL: rows
// stamped by a clock an hour ahead (a node whose clock stepped back since,
// or another node's) made write-through and write-behind Sets acknowledged,
// cached and silently not written (the version-guarded upsert matched no
// row), so that after a restart Get returned the old value.
func TestStaleVersion_WritesPastRowsStampedAheadSurviveRestarts(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1")
	cfg := f.writeConfig("stale.yaml", fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  wt: {backend: main, read: through, write: through}
  wb:
    backend: main
    read: through
    write: behind
    write_behind: {flush_interval: 50ms}
`, dsn))
	f.launch(cfg, nil, f.all...)
	f.waitUp(1, f.all...)
	ahead := hlc.FromTime(time.Now().Add(time.Hour))
	for _, ns := range []string{"wt", "wb"} { // the node created ringcache_kv
		pgExec(t, dsn, `INSERT INTO ringcache_kv (namespace, key, value, version) VALUES ($1, 'k', 'old', $2)`, ns, int64(ahead))
	}

	ctx := context.Background()
	set := func(value string) {
		t.Helper()
		c := dial(t, f.all...)[0]
		defer c.cc.Close()
		for _, ns := range []string{"wt", "wb"} {
			if _, err := c.cache.Set(ctx, &pb.SetRequest{Namespace: ns, Key: "k", Value: []byte(value)}); err != nil {
				t.Fatalf("Set %s/k: %v", ns, err)
			}
		}
		eventually(t, drainTimeout, "the write-behind journal is empty", func() error {
			j, err := c.journal()
			if err == nil && (j.Pending != 0 || j.DeadLetters != 0) {
				err = fmt.Errorf("%d pending, %d dead letters", j.Pending, j.DeadLetters)
			}
			return err
		})
	}
	check := func(when, want string) {
		t.Helper()
		for _, ns := range []string{"wt", "wb"} {
			row, ok := kvRows(t, dsn, ns, "k")["k"]
			if !ok || string(row.value) != want {
				t.Fatalf("%s: the database holds %s/k = %q (version %v), want the acknowledged %q", when, ns, row.value, hlc.Time(uint64(row.version)), want)
			}
		}
		c := dial(t, f.all...)[0]
		defer c.cc.Close()
		for _, ns := range []string{"wt", "wb"} {
			r, err := c.cache.Get(ctx, &pb.GetRequest{Namespace: ns, Key: "k"})
			if err != nil || !r.Found || string(r.Value) != want {
				t.Fatalf("%s: Get %s/k = %v, %v; want %q", when, ns, r, err, want)
			}
		}
	}

	set("new")
	check("after the Sets", "new")
	terminate(t, 30*time.Second, f.all...)
	f.launch(cfg, nil, f.all...)
	f.waitUp(1, f.all...)
	check("after a restart", "new")

	// The node's clock is now past the rows (and persisted there): a
	// crash and restart keep stamping above them.
	set("newer")
	kill9(t, f.all...)
	f.launch(cfg, nil, f.all...)
	f.waitUp(1, f.all...)
	check("after kill -9 and a restart", "newer")
}
