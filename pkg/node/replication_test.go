package node_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/internal/telemetry"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Replicated write-behind in one process (the same with real processes,
// PostgreSQL and kill -9 is in internal/e2e).

// behindNS is a write-behind namespace on db with the given replication.
func behindNS(name string, db *clustertest.FakeDB, replicas, min int) node.NamespaceSpec {
	return node.NamespaceSpec{
		Policy: strategy.Policy{Name: name, Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour, MaxKeyBytes: 256, MaxValueBytes: 1 << 16},
		Loader: db, Writer: db, Replicas: replicas, MinReplicas: min,
	}
}

// keyWith returns a key of ns whose owner among members is owner and whose
// owner in the ring without the owner (its replica) is replica.
// keyWith finds a key of ns that owner owns in c's table, with replica as
// its first successor (the node that holds its write-behind copy).
func keyWith(t *testing.T, c *clustertest.Cluster, ns, owner, replica string) string {
	t.Helper()
	r := c.Node(0).Ring()
	for k := 0; k < 100000; k++ {
		key := fmt.Sprintf("k%d", k)
		rk := node.RoutingKey(ns, key)
		if r.Owner(rk).Name != owner {
			continue
		}
		if succ := r.Successors(r.PartitionOf(rk), 2); len(succ) == 2 && succ[1].Name == replica {
			return key
		}
	}
	t.Fatalf("no key of %s owned by %s with replica %s", ns, owner, replica)
	return ""
}

func journalOf(t *testing.T, c *clustertest.Cluster, i int) *pb.JournalResponse {
	t.Helper()
	j, err := c.Admin(i).Journal(ctxT(t), &pb.JournalRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestReplication_ADeadOwnersAcknowledgedWritesAreReadAndFlushedByTheSurvivors(t *testing.T) {
	const keys = 300
	db := clustertest.NewFakeDB()
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour,
		Namespaces: []node.NamespaceSpec{behindNS("orders", db, 0, 0)}})
	ctx := ctxT(t)
	want := map[string]string{}
	for k := range keys {
		key, value := fmt.Sprintf("o%03d", k), fmt.Sprintf("v%d", k)
		if _, err := c.Cache(k%3).Set(ctx, &pb.SetRequest{Namespace: "orders", Key: key, Value: []byte(value)}); err != nil {
			t.Fatalf("Set %s: %v", key, err)
		}
		want[key] = value
	}
	var copies uint64
	for i := range 3 {
		copies += journalOf(t, c, i).ReplicaPending
	}
	if copies != keys {
		t.Fatalf("the replicas hold %d copies of %d acknowledged writes, want one each", copies, keys)
	}
	c.Kill(0)
	c.WaitConverged()
	for _, i := range []int{1, 2} {
		for key, value := range want {
			got, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: "orders", Key: key})
			if err != nil || string(got.GetValue()) != value {
				t.Fatalf("Get %s through %s after n1 died = %q, %v; want %q", key, clustertest.NodeName(i), got.GetValue(), err, value)
			}
		}
	}
	for _, i := range []int{1, 2} {
		if _, err := c.Admin(i).FlushJournal(ctx, &pb.FlushJournalRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	for key, value := range want {
		if row, ok := db.Row(key); !ok || string(row) != value {
			t.Fatalf("row %s = %q (%v) after the survivors flushed, want %q", key, row, ok, value)
		}
	}
	var taken uint64
	for _, i := range []int{1, 2} {
		j := journalOf(t, c, i)
		taken += j.TakenOver
		t.Logf("%s: took over %d records (%d takeovers), %d copies left, in sync %v", clustertest.NodeName(i), j.TakenOver, j.Takeovers, j.ReplicaPending, j.ReplicationInSync)
	}
	if taken == 0 {
		t.Fatal("no survivor took anything over")
	}
}

func TestReplication_AnUnreachableReplicaFailsTheWriteOrCountsIt(t *testing.T) {
	db := clustertest.NewFakeDB()
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour,
		Namespaces: []node.NamespaceSpec{behindNS("strict", db, 2, 0), behindNS("lenient", db, 2, 1)}})
	ctx := ctxT(t)
	strict := keyWith(t, c, "strict", "n1", "n2")
	lenient := keyWith(t, c, "lenient", "n1", "n2")
	// n1 cannot reach n2; n3 still can, so gossip keeps n2 in n1's ring.
	c.Net.Cut("n1", "n2")
	_, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "strict", Key: strict, Value: []byte("x")})
	if status.Code(err) != codes.Unavailable || reason.Of(err) != reason.ReplicaUnavailable || !strings.Contains(err.Error(), "n2") {
		t.Fatalf("Set with its replica unreachable and min_replicas 2 = %v; want UNAVAILABLE, REPLICA_UNAVAILABLE, naming n2", err)
	}
	t.Logf("min_replicas 2: %v", err)
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "lenient", Key: lenient, Value: []byte("y")}); err != nil {
		t.Fatalf("Set with its replica unreachable and min_replicas 1 = %v; want it accepted", err)
	}
	if j := journalOf(t, c, 0); j.UnderReplicated == 0 || j.ReplicationInSync {
		t.Fatalf("after an under-replicated write, journal = under_replicated %d, in sync %v", j.UnderReplicated, j.ReplicationInSync)
	}
	if r := c.Node(0).Ring(); len(r.Members()) != 3 {
		t.Fatalf("n1's ring lost a member (%d): the test did not keep n2 in the ring", len(r.Members()))
	}
	// Once n2 is reachable again, n1 re-replicates and says so.
	c.Net.Heal()
	clustertest.Eventually(t, 20*time.Second, func() error {
		j := journalOf(t, c, 0)
		if !j.ReplicationInSync {
			return errors.New("n1 not in sync")
		}
		if n2 := journalOf(t, c, 1); n2.ReplicaPending == 0 {
			return errors.New("n2 holds no copy")
		}
		return nil
	})
}

func TestReplication_AGracefulLeaveHandsItsWritesOverWhenTheDatabaseIsDown(t *testing.T) {
	db := clustertest.NewFakeDB()
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: 10 * time.Millisecond,
		Namespaces: []node.NamespaceSpec{behindNS("orders", db, 0, 0)}})
	ctx := ctxT(t)
	db.FailWrites(errors.New("database down"))
	key := keyWith(t, c, "orders", "n1", "n2")
	if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "orders", Key: key, Value: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.Stop(0)
	took := time.Since(start)
	c.WaitConverged()
	for _, i := range []int{1, 2} {
		got, err := c.Cache(i).Get(ctx, &pb.GetRequest{Namespace: "orders", Key: key})
		if err != nil || string(got.GetValue()) != "kept" {
			t.Fatalf("Get through %s after n1 left = %q, %v; want kept", clustertest.NodeName(i), got.GetValue(), err)
		}
	}
	j := journalOf(t, c, 1)
	if j.Pending == 0 {
		t.Fatalf("n2 (the key's new owner) holds no pending write after n1's handover: %+v", j)
	}
	db.FailWrites(nil)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if row, ok := db.Row(key); !ok || string(row) != "kept" {
			return fmt.Errorf("row = %q, %v", row, ok)
		}
		return nil
	})
	t.Logf("n1 left in %s with the database down; n2 took over %d records", took.Round(time.Millisecond), j.TakenOver)
}

func TestMetrics_ReplicationBacklogLatencyAndTakeovers(t *testing.T) {
	tels := []*telemetry.Telemetry{newTelemetry(t, "n1"), newTelemetry(t, "n2")}
	c := clustertest.Start(t, 2, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour, Configure: func(i int, cfg *node.Config) {
		cfg.MeterProvider = tels[i].MeterProvider()
	}})
	key := keyOwnedBy(t, c, clustertest.NSOrders, 1)
	if _, err := c.Cache(1).Set(ctxT(t), &pb.SetRequest{Namespace: clustertest.NSOrders, Key: key, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	f0, f1 := scrape(t, tels[0]), scrape(t, tels[1])
	wantMetric(t, f0, 1, "ringcache_replica_pending")
	wantMetric(t, f1, 1, "ringcache_replicated_total")
	wantMetric(t, f1, 1, "ringcache_replication_latency_seconds")
	wantMetric(t, f1, 0, "ringcache_under_replicated_writes_total")
	wantMetric(t, f1, 1, "ringcache_replication_in_sync")
	c.Kill(1)
	c.WaitConverged()
	clustertest.Eventually(t, 10*time.Second, func() error {
		f := scrape(t, tels[0])
		if got, _ := f.Sum("ringcache_takeovers_total"); got != 1 {
			return fmt.Errorf("takeovers = %v, want 1", got)
		}
		if got, _ := f.Sum("ringcache_taken_over_total"); got != 1 {
			return fmt.Errorf("taken over = %v, want 1", got)
		}
		if got, _ := f.Sum("ringcache_replica_pending"); got != 0 {
			return fmt.Errorf("replica backlog = %v, want 0 once taken over", got)
		}
		return nil
	})
}

// newerRowDB is a FakeDB where, just before the first write of key, another
// writer stores key at the next version: the write the flusher then makes
// is stale, as when the other side of a partition wrote the key later and
// flushed first.
type newerRowDB struct {
	*clustertest.FakeDB
	key  string
	once sync.Once
}

func (db *newerRowDB) Write(ctx context.Context, ws []strategy.Write) error {
	for _, w := range ws {
		if w.Key == db.key {
			db.once.Do(func() {
				if err := db.FakeDB.Write(ctx, []strategy.Write{{Key: w.Key, Value: []byte("newer"), Version: w.Version + 1}}); err != nil {
					panic(err)
				}
			})
		}
	}
	return db.FakeDB.Write(ctx, ws)
}

// A batch the database applied but for one superseded write leaves no copy
// on the replicas, of the superseded write or of the others. A copy kept
// would be served and flushed again should the owner depart before the
// replicas' sweep asked after it.
func TestReplication_NoCopyOutlivesAFlushThatFoundANewerRow(t *testing.T) {
	db := &newerRowDB{FakeDB: clustertest.NewFakeDB()}
	spec := behindNS("orders", db.FakeDB, 0, 0)
	spec.Writer = db
	c := clustertest.Start(t, 3, clustertest.Options{WriteBehind: true, FlushInterval: time.Hour,
		Namespaces: []node.NamespaceSpec{spec}})
	ctx := ctxT(t)
	superseded := keyWith(t, c, "orders", "n1", "n2")
	applied := keyWith(t, c, "orders", "n1", "n3")
	db.key = superseded
	for _, key := range []string{superseded, applied} {
		if _, err := c.Cache(0).Set(ctx, &pb.SetRequest{Namespace: "orders", Key: key, Value: []byte("older")}); err != nil {
			t.Fatalf("Set %s: %v", key, err)
		}
	}
	copies := func() (n uint64) {
		for i := range 3 {
			n += journalOf(t, c, i).ReplicaPending
		}
		return n
	}
	if n := copies(); n != 2 {
		t.Fatalf("the replicas hold %d copies of 2 pending writes", n)
	}
	if _, err := c.Admin(0).FlushJournal(ctx, &pb.FlushJournalRequest{}); err != nil {
		t.Fatal(err)
	}
	if row, _ := db.Row(superseded); string(row) != "newer" {
		t.Fatalf("row %s = %q, want the newer row kept", superseded, row)
	}
	if row, _ := db.Row(applied); string(row) != "older" {
		t.Fatalf("row %s = %q, want the write applied", applied, row)
	}
	if j := journalOf(t, c, 0); j.Pending != 0 {
		t.Fatalf("n1 still has %d writes pending after the flush", j.Pending)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		if n := copies(); n != 0 {
			return fmt.Errorf("the replicas still hold %d copies after the owner flushed", n)
		}
		return nil
	})
}
