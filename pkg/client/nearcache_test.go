package client_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/client"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// nodeGets sums the Gets the running nodes served in namespace ns.
func nodeGets(t *testing.T, c *clustertest.Cluster, ns string) uint64 {
	t.Helper()
	var sum uint64
	for _, i := range c.Up() {
		s, err := c.Admin(i).Stats(context.Background(), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range s.Namespaces {
			if n.Name == ns {
				sum += n.Gets
			}
		}
	}
	return sum
}

// warmNear Gets key until the client answers it from its near cache, and
// returns the value it holds.
func warmNear(t *testing.T, cl *client.Client, ns, key string) []byte {
	t.Helper()
	var v []byte
	clustertest.Eventually(t, 10*time.Second, func() error {
		hits := cl.Stats().NearHits
		var err error
		if v, _, err = cl.Get(context.Background(), ns, key); err != nil {
			return err
		}
		if cl.Stats().NearHits == hits {
			return errors.New("not served from the near cache yet")
		}
		return nil
	})
	return v
}

func nearClient(t *testing.T, c *clustertest.Cluster) *client.Client {
	return newClient(t, c, client.Options{NearCache: &client.NearCacheOptions{Namespaces: []string{clustertest.NSCache}}})
}

func TestNearCache_DisabledByDefault(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	cl := newClient(t, c, client.Options{})
	ctx := context.Background()
	if err := cl.Set(ctx, clustertest.NSCache, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	before := nodeGets(t, c, clustertest.NSCache)
	for range 10 {
		if v, ok, err := cl.Get(ctx, clustertest.NSCache, "k"); err != nil || !ok || string(v) != "v" {
			t.Fatalf("Get = %q %v %v", v, ok, err)
		}
	}
	if got := nodeGets(t, c, clustertest.NSCache) - before; got != 10 {
		t.Fatalf("nodes served %d Gets, want 10 (no near cache)", got)
	}
	if s := cl.Stats(); s.NearHits+s.NearMisses != 0 {
		t.Fatalf("near cache used without being enabled: %+v", s)
	}
}

func TestNearCache_HitMakesNoCall(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	cl := nearClient(t, c)
	ctx := context.Background()
	if err := cl.Set(ctx, clustertest.NSCache, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	warmNear(t, cl, clustertest.NSCache, "k")
	gets, calls := nodeGets(t, c, clustertest.NSCache), cl.Stats().Calls
	for range 100 {
		if v, ok, err := cl.Get(ctx, clustertest.NSCache, "k"); err != nil || !ok || string(v) != "v" {
			t.Fatalf("Get = %q %v %v", v, ok, err)
		}
	}
	if g := nodeGets(t, c, clustertest.NSCache) - gets; g != 0 {
		t.Fatalf("near-cached Gets reached the nodes %d times", g)
	}
	if n := cl.Stats().Calls - calls; n != 0 {
		t.Fatalf("near-cached Gets made %d calls", n)
	}
	// Namespaces the near cache does not cover always make the call.
	calls = cl.Stats().Calls
	if _, _, err := cl.Get(ctx, clustertest.NSUsers, "u"); err != nil {
		t.Fatal(err)
	}
	if cl.Stats().Calls == calls {
		t.Fatal("a Get of an uncovered namespace made no call")
	}
	// A Set by this client is seen by its next Get at once.
	if err := cl.Set(ctx, clustertest.NSCache, "k", []byte("w"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := cl.Get(ctx, clustertest.NSCache, "k"); string(v) != "w" {
		t.Fatalf("Get after own Set = %q, want w", v)
	}
	if err := cl.Delete(ctx, clustertest.NSCache, "k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := cl.Get(ctx, clustertest.NSCache, "k"); ok {
		t.Fatal("Get after own Delete found the key")
	}
}

// TestNearCache_Staleness measures how long a near-cached value outlives a
// write by another client: from the writer's Set (or Delete) ack to the
// first Get of the near-caching client that returns the new value.
func TestNearCache_Staleness(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	a := nearClient(t, c)
	b := newClient(t, c, client.Options{})
	ctx := context.Background()
	const trials = 200
	const bound = 2 * time.Second // the near cache's TTL: the safety net
	var lags []time.Duration
	cachedBefore := 0
	for i := range trials {
		key := fmt.Sprint("k", i%16) // keys on every node
		old := fmt.Sprint("v", i)
		if err := b.Set(ctx, clustertest.NSCache, key, []byte(old), 0); err != nil {
			t.Fatal(err)
		}
		// Have a cache the old value.
		deadline := time.Now().Add(bound)
		for {
			hits := a.Stats().NearHits
			v, _, err := a.Get(ctx, clustertest.NSCache, key)
			if err != nil {
				t.Fatal(err)
			}
			if string(v) == old && a.Stats().NearHits > hits {
				cachedBefore++
				break
			}
			if time.Now().After(deadline) {
				break
			}
		}
		del := i%10 == 9
		want := fmt.Sprint("w", i)
		if del {
			if err := b.Delete(ctx, clustertest.NSCache, key); err != nil {
				t.Fatal(err)
			}
		} else if err := b.Set(ctx, clustertest.NSCache, key, []byte(want), 0); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for {
			v, ok, err := a.Get(ctx, clustertest.NSCache, key)
			if err != nil {
				t.Fatal(err)
			}
			if (del && !ok) || (!del && string(v) == want) {
				break
			}
			if time.Since(acked) > bound {
				t.Fatalf("trial %d: a still reads %q %v %v after the write was acknowledged", i, v, ok, time.Since(acked))
			}
			runtime.Gosched()
		}
		lags = append(lags, time.Since(acked))
	}
	slices.Sort(lags)
	s := a.Stats()
	t.Logf("near-cache staleness over %d trials (%d with the old value near-cached): p50 %v, p99 %v, max %v; near hits %d, misses %d, invalidations %d, resets %d",
		trials, cachedBefore, lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1],
		s.NearHits, s.NearMisses, s.NearInvalidations, s.NearResets)
	if cachedBefore < trials/2 {
		t.Fatalf("the old value was near-cached in only %d of %d trials: the test did not exercise invalidation", cachedBefore, trials)
	}
}

// TestNearCache_StreamLossClearsEntries kills the owner of a near-cached
// key: its stream breaks, the near cache drops everything, and the client
// reads what the cluster now holds (nothing: the key died with its owner)
// instead of the old value.
func TestNearCache_StreamLossClearsEntries(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	cl := nearClient(t, c)
	ctx := context.Background()
	if err := cl.Set(ctx, clustertest.NSCache, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	warmNear(t, cl, clustertest.NSCache, "k")
	owner := cl.Owner(clustertest.NSCache, "k")
	victim := -1
	for _, i := range c.Up() {
		if c.Node(i).GRPCAddr() == owner {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("no node at %s", owner)
	}
	resets := cl.Stats().NearResets
	c.Kill(victim)
	clustertest.Eventually(t, 5*time.Second, func() error {
		if cl.Stats().NearResets == resets {
			return errors.New("no near-cache reset after the owner's stream broke")
		}
		return nil
	})
	c.WaitConverged()
	waitRingNodes(t, cl, 2)
	clustertest.Eventually(t, 10*time.Second, func() error {
		v, ok, err := cl.Get(ctx, clustertest.NSCache, "k")
		if err != nil {
			return err
		}
		if ok {
			return fmt.Errorf("Get = %q after its owner died: served stale from the near cache?", v)
		}
		return nil
	})
	// The near cache works again on the new ring.
	if err := cl.Set(ctx, clustertest.NSCache, "k", []byte("again"), 0); err != nil {
		t.Fatal(err)
	}
	if v := warmNear(t, cl, clustertest.NSCache, "k"); string(v) != "again" {
		t.Fatalf("near cache serves %q, want again", v)
	}
}
