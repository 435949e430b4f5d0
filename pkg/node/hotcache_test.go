package node_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/telemetry/telemetrytest"
	"github.com/ringcache/ringcache/pkg/node"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// hotRate is the promotion rate of the hot-cache tests: a tight loop of
// Gets passes it within milliseconds, a handful of Gets never does.
const hotRate = 50

// hotCluster starts n nodes with the hot cache on. Its TTL is long, so a
// test that sees a write through a hot cache saw it by invalidation.
func hotCluster(t *testing.T, n int) *clustertest.Cluster {
	return clustertest.Start(t, n, clustertest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.HotCacheBytes = 1 << 20
		cfg.HotCacheMinRate = hotRate
		cfg.HotCacheTTL = time.Minute
	}})
}

func hotStats(t *testing.T, c *clustertest.Cluster, i int) *pb.HotCacheStats {
	t.Helper()
	h := stats(t, c, i).HotCache
	if h == nil {
		t.Fatalf("node %d reports no hot cache", i)
	}
	return h
}

func get(t *testing.T, c *clustertest.Cluster, i int, key string) *pb.GetResponse {
	t.Helper()
	r, err := c.Cache(i).Get(ctxT(t), &pb.GetRequest{Namespace: clustertest.NSCache, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func set(t *testing.T, c *clustertest.Cluster, i int, key, value string) {
	t.Helper()
	if _, err := c.Cache(i).Set(ctxT(t), &pb.SetRequest{Namespace: clustertest.NSCache, Key: key, Value: []byte(value)}); err != nil {
		t.Fatal(err)
	}
}

// warmHot Gets key through node i until node i answers it from its hot
// cache.
func warmHot(t *testing.T, c *clustertest.Cluster, i int, key string) {
	t.Helper()
	clustertest.Eventually(t, 10*time.Second, func() error {
		for range 2 * hotRate {
			get(t, c, i, key)
			if c.Node(i).HotCached(clustertest.NSCache, key) {
				return nil
			}
		}
		return errors.New("key not hot-cached yet")
	})
}

// others returns the two running nodes other than owner.
func others(c *clustertest.Cluster, owner int) (int, int) {
	var o []int
	for _, i := range c.Up() {
		if i != owner {
			o = append(o, i)
		}
	}
	return o[0], o[1]
}

func TestHotCache_HotKeyServedWithoutForward(t *testing.T) {
	c := hotCluster(t, 3)
	key := keyOwnedBy(t, c, clustertest.NSCache, 2)
	set(t, c, 2, key, "v")
	warmHot(t, c, 0, key)

	fwd, in, hits := stats(t, c, 0).Forwards, stats(t, c, 2).ForwardedIn, hotStats(t, c, 0).Hits
	for range 200 {
		if r := get(t, c, 0, key); !r.Found || string(r.Value) != "v" {
			t.Fatalf("Get = %v %q, want v", r.Found, r.Value)
		}
	}
	// The Pipeline answers hot keys inline, too.
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var ops []*pb.PipelineOp
	for id := range uint64(50) {
		ops = append(ops, &pb.PipelineOp{Id: id, Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: clustertest.NSCache, Key: key}}})
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < len(ops); {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Results {
			if r.ErrorCode != 0 || !r.Found || string(r.Value) != "v" {
				t.Fatalf("pipelined Get = %+v, want v", r)
			}
		}
		got += len(resp.Results)
	}
	_ = stream.CloseSend()

	if f := stats(t, c, 0).Forwards - fwd; f != 0 {
		t.Fatalf("the non-owner forwarded %d Gets of a hot key", f)
	}
	if f := stats(t, c, 2).ForwardedIn - in; f != 0 {
		t.Fatalf("the owner served %d forwarded Gets of a hot key", f)
	}
	if h := hotStats(t, c, 0).Hits - hits; h != 250 {
		t.Fatalf("hot hits = %d, want 250", h)
	}
	// Sizes are updated by the cache's maintenance, a little later.
	clustertest.Eventually(t, 2*time.Second, func() error {
		if s := hotStats(t, c, 0); s.Streams != 1 || s.Entries == 0 || s.Bytes == 0 {
			return fmt.Errorf("hot cache stats %+v: want one stream and the entry", s)
		}
		return nil
	})
}

func TestHotCache_WritesThroughAnyNodeInvalidate(t *testing.T) {
	c := hotCluster(t, 3)
	owner := 2
	key := keyOwnedBy(t, c, clustertest.NSCache, owner)
	reader, third := others(c, owner)
	set(t, c, owner, key, "v0")
	warmHot(t, c, reader, key)

	eventuallyReads := func(want string, found bool) {
		t.Helper()
		clustertest.Eventually(t, 2*time.Second, func() error {
			r := get(t, c, reader, key)
			if r.Found != found || string(r.Value) != want {
				return fmt.Errorf("reader Gets %v %q, want %v %q", r.Found, r.Value, found, want)
			}
			return nil
		})
	}
	// Through a third node, and on the owner itself: the owner's stream
	// tells the reader (the TTL is a minute).
	set(t, c, third, key, "v1")
	eventuallyReads("v1", true)
	warmHot(t, c, reader, key)
	set(t, c, owner, key, "v2")
	eventuallyReads("v2", true)
	warmHot(t, c, reader, key)
	if _, err := c.Cache(third).Delete(ctxT(t), &pb.DeleteRequest{Namespace: clustertest.NSCache, Key: key}); err != nil {
		t.Fatal(err)
	}
	eventuallyReads("", false)

	// A not-found is hot-cached like a value, and a write through the
	// reader itself is read back at once: it drops the entry when the owner
	// answers, before the stream says so.
	warmHot(t, c, reader, key)
	set(t, c, reader, key, "v3")
	if r := get(t, c, reader, key); !r.Found || string(r.Value) != "v3" {
		t.Fatalf("Get after a Set through the same node = %v %q, want v3", r.Found, r.Value)
	}
	warmHot(t, c, reader, key)
	if _, err := c.Cache(reader).Delete(ctxT(t), &pb.DeleteRequest{Namespace: clustertest.NSCache, Key: key}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, c, reader, key); r.Found {
		t.Fatalf("Get after a Delete through the same node = %q", r.Value)
	}
	if s := hotStats(t, c, reader); s.Invalidations == 0 {
		t.Fatalf("no invalidation came over the owner's stream: %+v", s)
	}
}

func TestHotCache_ColdKeysNeverCached(t *testing.T) {
	c := hotCluster(t, 3)
	owner := 2
	reader, _ := others(c, owner)
	var keys []string
	for k := 0; len(keys) < 500; k++ {
		key := fmt.Sprint("cold-", k)
		if ownerIndex(t, c, clustertest.NSCache, key) == owner {
			keys = append(keys, key)
		}
	}
	set(t, c, owner, keys[0], "v")
	fwd := stats(t, c, reader).Forwards
	gets := 0
	for _, key := range keys {
		get(t, c, reader, key)
		gets++
	}
	for range hotRate / 2 { // below the rate
		get(t, c, reader, keys[0])
		gets++
	}
	if f := stats(t, c, reader).Forwards - fwd; f != uint64(gets) {
		t.Fatalf("%d Gets of cold keys made %d forwards", gets, f)
	}
	if s := hotStats(t, c, reader); s.Fills != 0 || s.Hits != 0 || s.Entries != 0 || s.Streams != 0 {
		t.Fatalf("cold keys reached the hot cache: %+v", s)
	}
}

func TestHotCache_DisabledByDefault(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	if s := stats(t, c, 0); s.HotCache != nil {
		t.Fatalf("hot cache stats without a hot cache: %+v", s.HotCache)
	}
	key := keyOwnedBy(t, c, clustertest.NSCache, 1)
	for range 4 * hotRate {
		get(t, c, 0, key)
	}
	if c.Node(0).HotCached(clustertest.NSCache, key) {
		t.Fatal("a key was hot-cached with the hot cache off")
	}
}

// TestHotCache_StreamLossDropsEntries cuts the link between the reader and
// the owner: the owner's stream breaks, the reader drops the owner's entries
// and no longer answers the key itself.
func TestHotCache_StreamLossDropsEntries(t *testing.T) {
	c := hotCluster(t, 3)
	owner := 2
	key := keyOwnedBy(t, c, clustertest.NSCache, owner)
	reader, _ := others(c, owner)
	set(t, c, owner, key, "v")
	warmHot(t, c, reader, key)
	before := hotStats(t, c, reader)

	c.Net.Cut(clustertest.NodeName(reader), clustertest.NodeName(owner))
	clustertest.Eventually(t, 2*time.Second, func() error {
		if c.Node(reader).HotCached(clustertest.NSCache, key) {
			return errors.New("the key is still hot-cached after its owner's stream broke")
		}
		return nil
	})
	after := hotStats(t, c, reader)
	if after.Resets == before.Resets {
		t.Fatalf("no reset counted: before %+v, after %+v", before, after)
	}
	// Whatever the reader answers now, it is not from the hot cache.
	_, _ = c.Cache(reader).Get(ctxT(t), &pb.GetRequest{Namespace: clustertest.NSCache, Key: key})
	if h := hotStats(t, c, reader).Hits; h != after.Hits {
		t.Fatalf("hot hits went from %d to %d with the owner's stream down", after.Hits, h)
	}
}

// TestHotCache_RingChangeDropsEntries adds a node: partitions move, and
// every hot entry goes.
func TestHotCache_RingChangeDropsEntries(t *testing.T) {
	c := hotCluster(t, 3)
	owner := 2
	key := keyOwnedBy(t, c, clustertest.NSCache, owner)
	reader, _ := others(c, owner)
	set(t, c, owner, key, "v")
	warmHot(t, c, reader, key)
	resets := hotStats(t, c, reader).Resets
	c.AddNode()
	c.WaitConverged()
	if c.Node(reader).HotCached(clustertest.NSCache, key) {
		t.Fatal("a hot entry survived partitions moving")
	}
	if hotStats(t, c, reader).Resets == resets {
		t.Fatal("no reset counted on a ring change")
	}
}

// TestHotCache_Staleness measures how long a hot entry outlives a write:
// from the write's acknowledgement (a Set or Delete through the owner or a
// third node) to the entry's removal on the reader, which is what a Get
// through the reader waits for. The TTL is a minute, so only the owner's
// invalidation stream can remove it. docs/architecture.md quotes the
// figures.
func TestHotCache_Staleness(t *testing.T) {
	c := hotCluster(t, 3)
	const trials = 200
	const bound = 2 * time.Second
	ctx := context.Background()
	var lags []time.Duration
	for i := range trials {
		owner := i % 3
		key := keyOwnedBy(t, c, clustertest.NSCache, owner)
		reader, third := others(c, owner)
		if i%2 == 1 {
			reader, third = third, reader
		}
		writer := owner
		if i%4 >= 2 {
			writer = third
		}
		set(t, c, writer, key, fmt.Sprint("old", i))
		warmHot(t, c, reader, key)

		del := i%10 == 9
		want := fmt.Sprint("new", i)
		if del {
			if _, err := c.Cache(writer).Delete(ctx, &pb.DeleteRequest{Namespace: clustertest.NSCache, Key: key}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := c.Cache(writer).Set(ctx, &pb.SetRequest{Namespace: clustertest.NSCache, Key: key, Value: []byte(want)}); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		for c.Node(reader).HotCached(clustertest.NSCache, key) {
			if time.Since(acked) > bound {
				t.Fatalf("trial %d: the reader still holds the old value %v after the write was acknowledged", i, time.Since(acked))
			}
			runtime.Gosched()
		}
		lags = append(lags, time.Since(acked))
		if r := get(t, c, reader, key); r.Found == del || (!del && string(r.Value) != want) {
			t.Fatalf("trial %d: after the invalidation the reader Gets %v %q", i, r.Found, r.Value)
		}
	}
	slices.Sort(lags)
	var s pb.HotCacheStats
	for _, i := range c.Up() {
		h := hotStats(t, c, i)
		s.Fills += h.Fills
		s.Invalidations += h.Invalidations
		s.Resets += h.Resets
	}
	t.Logf("hot-cache staleness over %d trials: p50 %v, p90 %v, p99 %v, max %v; fills %d, invalidations %d, resets %d",
		trials, lags[len(lags)/2], lags[len(lags)*90/100], lags[len(lags)*99/100], lags[len(lags)-1], s.Fills, s.Invalidations, s.Resets)
}

func TestHotCache_Metrics(t *testing.T) {
	tel := newTelemetry(t, "n1")
	c := clustertest.Start(t, 2, clustertest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.HotCacheBytes = 1 << 20
		cfg.HotCacheMinRate = hotRate
		cfg.HotCacheTTL = time.Minute
		if i == 0 {
			cfg.MeterProvider = tel.MeterProvider()
		}
	}})
	key := keyOwnedBy(t, c, clustertest.NSCache, 1)
	set(t, c, 1, key, "v")
	warmHot(t, c, 0, key)
	var f telemetrytest.Families
	clustertest.Eventually(t, 2*time.Second, func() error { // sizes lag a little
		f = scrape(t, tel)
		for _, name := range []string{"ringcache_hot_cache_fills_total", "ringcache_hot_cache_bytes", "ringcache_hot_cache_entries"} {
			if v, ok := f.Sum(name); !ok || v == 0 {
				return fmt.Errorf("%s = %v (exported: %v), want > 0", name, v, ok)
			}
		}
		return nil
	})
	wantMetric(t, f, 1<<20, "ringcache_hot_cache_max_bytes")
	wantMetric(t, f, 1, "ringcache_hot_cache_streams")
	for _, name := range []string{"ringcache_hot_cache_hits_total", "ringcache_hot_cache_invalidations_total", "ringcache_hot_cache_resets_total"} {
		if _, ok := f.Sum(name); !ok {
			t.Errorf("%s is missing", name)
		}
	}
}
