package ctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/client"
	ringnode "github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// flushCluster is three in-process nodes with write-behind whose journals
// never flush on their own (a write stays pending) and a hot cache whose
// entries outlive the test, so only an invalidation can end them.
func flushCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	return clustertest.Start(t, 3, clustertest.Options{
		WriteBehind: true, FlushInterval: time.Hour, LogLevel: slog.LevelInfo,
		Configure: func(_ int, cfg *ringnode.Config) {
			cfg.HotCacheBytes, cfg.HotCacheMinRate, cfg.HotCacheTTL = 1<<20, 50, time.Hour
		},
	})
}

func clusterGet(t *testing.T, c *clustertest.Cluster, i int, ns, key string) string {
	t.Helper()
	r, err := c.Cache(i).Get(t.Context(), &ringcachev1.GetRequest{Namespace: ns, Key: key})
	if err != nil {
		t.Fatalf("Get %s/%s through n%d: %v", ns, key, i+1, err)
	}
	return string(r.GetValue())
}

func nsStats(t *testing.T, c *clustertest.Cluster, i int, ns string) *ringcachev1.NamespaceStats {
	t.Helper()
	s, err := c.Admin(i).Stats(t.Context(), &ringcachev1.StatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range s.GetNamespaces() {
		if n.GetName() == ns {
			return n
		}
	}
	t.Fatalf("n%d has no namespace %s", i+1, ns)
	return nil
}

// owners counts, per node index, the keys of ns it owns.
func owners(c *clustertest.Cluster, ns string, keys []string) map[int]int {
	r := c.Node(0).Ring()
	n := map[int]int{}
	for _, k := range keys {
		for i := range 3 {
			if r.Owner(strategy.StoreKey(ns, k)).Name == clustertest.NodeName(i) {
				n[i]++
			}
		}
	}
	return n
}

func TestFlushCommand_EmptiesANamespaceOnEveryNodeAndKeepsPendingWrites(t *testing.T) {
	c := flushCluster(t)
	addr := c.Node(0).GRPCAddr()
	var users, others []string
	for i := range 30 {
		users, others = append(users, fmt.Sprintf("user:%d", i)), append(others, fmt.Sprintf("other:%d", i))
	}
	all := append(append([]string{}, users...), others...)
	for i, k := range all {
		c.DB.Put(k, []byte("old"))
		clusterGet(t, c, i%3, clustertest.NSUsers, k)
	}
	for _, k := range all {
		c.DB.Put(k, []byte("new")) // changed behind the cache's back
	}

	// A prefix flush: only user:* is read again from the database.
	out := mustRun(t, "--addr", addr, "flush", clustertest.NSUsers, "--prefix", "user:")
	if got := rows(out); len(got) != 4 {
		t.Fatalf("flush printed %d rows, want a header and 3 nodes:\n%s", len(got), out)
	}
	for i, r := range rows(out)[1:] {
		if r[0] != clustertest.NodeName(i) || r[1] != "1" || r[2] != "1" || r[4] != "ok" {
			t.Fatalf("flush row %q, want %s, epoch 1, 1 prefix, ok:\n%s", r, clustertest.NodeName(i), out)
		}
	}
	loads := c.DB.Loads()
	for i, k := range users {
		if v := clusterGet(t, c, (i+1)%3, clustertest.NSUsers, k); v != "new" {
			t.Fatalf("%s after flushing its prefix = %q, want new", k, v)
		}
	}
	for i, k := range others {
		if v := clusterGet(t, c, (i+1)%3, clustertest.NSUsers, k); v != "old" {
			t.Fatalf("%s outside the flushed prefix = %q, want the cached old", k, v)
		}
	}
	if got := c.DB.Loads() - loads; got != int64(len(users)) {
		t.Fatalf("%d database loads after the prefix flush, want %d (user:* only)", got, len(users))
	}

	// The whole namespace: every node misses the keys it owns.
	before := map[int]uint64{}
	for i := range 3 {
		before[i] = nsStats(t, c, i, clustertest.NSUsers).GetLoads()
	}
	mustRun(t, "--addr", addr, "flush", clustertest.NSUsers)
	for i, k := range others {
		if v := clusterGet(t, c, (i+2)%3, clustertest.NSUsers, k); v != "new" {
			t.Fatalf("%s after the flush = %q, want new", k, v)
		}
	}
	for i, owned := range owners(c, clustertest.NSUsers, others) {
		s := nsStats(t, c, i, clustertest.NSUsers)
		if got := s.GetLoads() - before[i]; got != uint64(owned) || s.GetFlushes() != 2 {
			t.Errorf("n%d: %d loads after the flush for the %d keys it owns; %d flushes, want 2", i+1, got, owned, s.GetFlushes())
		}
	}

	// Write-behind: writes still pending are kept and read back.
	var orders []string
	for i := range 10 {
		k := fmt.Sprintf("order:%d", i)
		orders = append(orders, k)
		c.DB.Put(k, []byte("in-db"))
		if _, err := c.Cache(i%3).Set(t.Context(), &ringcachev1.SetRequest{Namespace: clustertest.NSOrders, Key: k, Value: []byte("pending")}); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "--addr", addr, "flush", clustertest.NSOrders)
	for i, k := range orders {
		if v := clusterGet(t, c, (i+1)%3, clustertest.NSOrders, k); v != "pending" {
			t.Fatalf("%s after the flush = %q, want its pending write", k, v)
		}
		if row, _ := c.DB.Row(k); string(row) != "in-db" {
			t.Fatalf("the flush wrote %s to the database: %q", k, row)
		}
	}
	var pendingHits uint64
	for i := range 3 {
		pendingHits += nsStats(t, c, i, clustertest.NSOrders).GetPendingHits()
	}
	if pendingHits != uint64(len(orders)) {
		t.Fatalf("%d misses answered from the journal, want %d", pendingHits, len(orders))
	}
}

// A flush reaches the copies other than the owner's: the hot cache of a
// node that does not own the key, a client's near cache, and any stream
// watching the namespace, which ends with ABORTED.
func TestFlushCommand_ResetsHotCachesNearCachesAndStreams(t *testing.T) {
	c := flushCluster(t)
	const key = "hot"
	c.DB.Put(key, []byte("old"))
	owner := -1
	for i := range 3 {
		if c.Node(0).Ring().Owner(strategy.StoreKey(clustertest.NSUsers, key)).Name == clustertest.NodeName(i) {
			owner = i
		}
	}
	via := (owner + 1) % 3
	clustertest.Eventually(t, 10*time.Second, func() error { // hot on a node that does not own it
		for range 100 {
			clusterGet(t, c, via, clustertest.NSUsers, key)
		}
		s, err := c.Admin(via).Stats(t.Context(), &ringcachev1.StatsRequest{})
		if err != nil || s.GetHotCache().GetHits() == 0 {
			return fmt.Errorf("not served from the hot cache yet (%v)", err)
		}
		return nil
	})
	cl, err := client.New(client.Options{Seeds: []string{c.Node(0).GRPCAddr()},
		NearCache: &client.NearCacheOptions{Namespaces: []string{clustertest.NSUsers}, TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	clustertest.Eventually(t, 10*time.Second, func() error { // near-cached
		if _, _, err := cl.Get(t.Context(), clustertest.NSUsers, key); err != nil {
			return err
		}
		if cl.Stats().NearHits == 0 {
			return errors.New("no near-cache hit yet")
		}
		return nil
	})
	wctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	watch, err := c.Cache(owner).WatchInvalidations(wctx, &ringcachev1.WatchInvalidationsRequest{Namespaces: []string{clustertest.NSUsers}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil { // subscribed
		t.Fatal(err)
	}

	c.DB.Put(key, []byte("new"))
	mustRun(t, "--addr", c.Node(0).GRPCAddr(), "flush", clustertest.NSUsers)

	for {
		_, err := watch.Recv()
		if err == nil {
			continue // keys changed before the flush
		}
		if status.Code(err) != codes.Aborted || !strings.Contains(err.Error(), "flushed") {
			t.Fatalf("the watch ended with %v, want ABORTED: namespace flushed", err)
		}
		break
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if v := clusterGet(t, c, via, clustertest.NSUsers, key); v != "new" {
			return fmt.Errorf("through the hot cache of n%d: %q", via+1, v)
		}
		v, _, err := cl.Get(context.WithoutCancel(t.Context()), clustertest.NSUsers, key)
		if err != nil || string(v) != "new" {
			return fmt.Errorf("through the near cache: %q, %v", v, err)
		}
		return nil
	})
}

func TestFlushCommand_BadRequestsAreExplained(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{LogLevel: slog.LevelInfo})
	addr := c.Node(0).GRPCAddr()
	_, _, err := runCLI(t, "", "--addr", addr, "flush", "nope")
	if err == nil || !strings.Contains(err.Error(), `namespace "nope" is not configured`) {
		t.Fatalf("flush of an unknown namespace: %v", err)
	}
	_, _, err = runCLI(t, "", "--addr", addr, "flush", clustertest.NSUsers, "--prefix", strings.Repeat("k", 300))
	if !isCode(err, codes.InvalidArgument) || !strings.Contains(err.Error(), "prefix is 300 bytes") {
		t.Fatalf("flush with a prefix longer than any key: %v", err)
	}
	if _, _, err := runCLI(t, "", "--addr", addr, "flush"); err == nil {
		t.Fatal("flush without a namespace succeeded")
	}
}
