package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/client"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func newClient(t *testing.T, c *clustertest.Cluster, opts client.Options) *client.Client {
	t.Helper()
	if opts.Seeds == nil {
		opts.Seeds = []string{c.Node(0).GRPCAddr()}
	}
	cl, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	// Routing needs the ring with every running node.
	waitRingNodes(t, cl, len(c.Up()))
	return cl
}

// waitRingNodes waits until the client routes by a ring of n nodes.
func waitRingNodes(t *testing.T, cl *client.Client, n int) {
	t.Helper()
	clustertest.Eventually(t, 10*time.Second, func() error {
		if got := len(cl.Nodes()); got != n {
			return fmt.Errorf("client ring has %d nodes, want %d", got, n)
		}
		return nil
	})
}

func forwards(t *testing.T, c *clustertest.Cluster) uint64 {
	t.Helper()
	var sum uint64
	for _, i := range c.Up() {
		s, err := c.Admin(i).Stats(context.Background(), &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		sum += s.Forwards
	}
	return sum
}

func TestClient_RoutesStraightToTheOwner(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	cl := newClient(t, c, client.Options{})
	ctx := context.Background()
	before := forwards(t, c)
	for k := range 200 {
		key := fmt.Sprint(k)
		if err := cl.Set(ctx, clustertest.NSCache, key, []byte(key), 0); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := cl.Get(ctx, clustertest.NSCache, key); err != nil || !ok || string(v) != key {
			t.Fatalf("Get %s = %q %v %v", key, v, ok, err)
		}
	}
	if n := forwards(t, c) - before; n != 0 {
		t.Fatalf("%d forwarding hops for 400 ring-routed calls, want 0", n)
	}
	keys := []string{"1", "2", "3", "150", "missing"}
	got, err := cl.GetMany(ctx, clustertest.NSCache, keys)
	if err != nil || len(got) != 4 || string(got["150"]) != "150" {
		t.Fatalf("GetMany = %v, %v", got, err)
	}
}

func TestClient_NodeLossDuringLoadRecovers(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	cl := newClient(t, c, client.Options{CallTimeout: time.Second})
	ctx := context.Background()
	for k := range 100 {
		c.DB.Put(fmt.Sprint(k), []byte("row"))
	}
	var calls, failures, lateFailures atomic.Int64
	var lastFailure, convergedAt atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for k := w; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				started := time.Now().UnixNano()
				_, _, err := cl.Get(ctx, clustertest.NSUsers, fmt.Sprint(k%100))
				calls.Add(1)
				if err != nil && convergedAt.Load() != 0 && started > convergedAt.Load() {
					lateFailures.Add(1)
				}
				if err != nil {
					if failures.Add(1) == 1 || failures.Load() == 400 {
						t.Logf("call failed: %v", err)
					}
					lastFailure.Store(time.Now().UnixNano())
				}
			}
		})
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if calls.Load() < 200 {
			return errors.New("warming up")
		}
		return nil
	})
	killed := time.Now()
	c.Kill(2)
	c.WaitConverged()
	waitRingNodes(t, cl, 2)
	converged := time.Since(killed)
	convergedAt.Store(time.Now().UnixNano())
	before := calls.Load()
	clustertest.Eventually(t, 10*time.Second, func() error {
		if calls.Load() < before+500 {
			return fmt.Errorf("%d calls since the ring converged", calls.Load()-before)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	recovery := time.Duration(0)
	if lf := lastFailure.Load(); lf != 0 {
		recovery = time.Unix(0, lf).Sub(killed)
	}
	t.Logf("node killed: %d of %d calls failed (error rate %.2f%%); last failure %v after the kill; ring without it after %v",
		failures.Load(), calls.Load(), 100*float64(failures.Load())/float64(calls.Load()), recovery, converged)
	// A call started once the client routes by the ring without the dead
	// node does not fail.
	if f := lateFailures.Load(); f != 0 {
		t.Fatalf("%d calls started after the ring had converged failed", f)
	}
	if _, _, err := cl.Get(ctx, clustertest.NSUsers, "7"); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestClient_GetOrLoadRunsTheLoaderOnceClusterWide(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	clients := []*client.Client{
		newClient(t, c, client.Options{Seeds: []string{c.Node(0).GRPCAddr()}}),
		newClient(t, c, client.Options{Seeds: []string{c.Node(1).GRPCAddr()}}),
		newClient(t, c, client.Options{Seeds: []string{c.Node(2).GRPCAddr()}}),
	}
	var loads atomic.Int32
	release := make(chan struct{})
	loader := func(ctx context.Context) ([]byte, error) {
		loads.Add(1)
		<-release
		return []byte("loaded"), nil
	}
	var wg sync.WaitGroup
	results := make(chan string, 60)
	for i := range 60 {
		wg.Go(func() {
			v, err := clients[i%3].GetOrLoad(context.Background(), clustertest.NSCache, "hot", loader)
			if err != nil {
				t.Error(err)
			}
			results <- string(v)
		})
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if loads.Load() == 0 {
			return errors.New("no load yet")
		}
		return nil
	})
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if v != "loaded" {
			t.Fatalf("a caller got %q", v)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("loader ran %d times for 60 concurrent GetOrLoad calls over 3 clients, want 1", n)
	}
}

func TestClient_DeleteDuringLoadRejectsTheStaleSet(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	cl := newClient(t, c, client.Options{})
	ctx := context.Background()
	loading := make(chan struct{})
	proceed := make(chan struct{})
	done := make(chan []byte)
	go func() {
		v, err := cl.GetOrLoad(ctx, clustertest.NSCache, "k", func(context.Context) ([]byte, error) {
			close(loading)
			<-proceed
			return []byte("stale"), nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	<-loading
	// The application updates its database and invalidates the key.
	if err := cl.Delete(ctx, clustertest.NSCache, "k"); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	if v := <-done; string(v) != "stale" {
		t.Fatalf("the loading caller got %q", v)
	}
	if _, found, _ := cl.Get(ctx, clustertest.NSCache, "k"); found {
		t.Fatal("the stale value was cached after the Delete")
	}
	if cl.Stats().LeaseRejected != 1 {
		t.Fatalf("stats %+v", cl.Stats())
	}
}

func TestClient_FailOpenWhenTheClusterIsUnreachable(t *testing.T) {
	cl, err := client.New(client.Options{Seeds: []string{"127.0.0.1:1"}, FailOpen: true, CallTimeout: 200 * time.Millisecond, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v, err := cl.GetOrLoad(context.Background(), "ns", "k", func(context.Context) ([]byte, error) { return []byte("direct"), nil })
	if err != nil || string(v) != "direct" || cl.Stats().FailOpen != 1 {
		t.Fatalf("fail-open GetOrLoad = %q, %v, %+v", v, err, cl.Stats())
	}
	strict, _ := client.New(client.Options{Seeds: []string{"127.0.0.1:1"}, CallTimeout: 200 * time.Millisecond, Retries: -1})
	defer strict.Close()
	if _, err := strict.GetOrLoad(context.Background(), "ns", "k", func(context.Context) ([]byte, error) { return nil, nil }); err == nil {
		t.Fatal("GetOrLoad without FailOpen succeeded against no cluster")
	}
}

// A call that fails on every node it tries says what each answered: the
// first failure often explains the rest. Its status is the last try's.
func TestClient_AFailureOnEveryNodeNamesEachTry(t *testing.T) {
	seeds := []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} // nothing listens
	cl, err := client.New(client.Options{Seeds: seeds, CallTimeout: 5 * time.Second, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, _, err = cl.Get(context.Background(), "ns", "k")
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Get with no node up = %v; want UNAVAILABLE", err)
	}
	for _, s := range seeds {
		if !strings.Contains(err.Error(), s+": ") {
			t.Fatalf("error %q does not say what %s answered", err, s)
		}
	}
}

func TestClient_CloseLeaksNoGoroutine(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	before := goleak.IgnoreCurrent()
	cl, err := client.New(client.Options{Seeds: []string{c.Node(0).GRPCAddr()}, NearCache: &client.NearCacheOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if cl.RingVersion() == 0 {
			return errors.New("no ring yet")
		}
		return nil
	})
	if err := cl.Set(context.Background(), clustertest.NSCache, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	warmNear(t, cl, clustertest.NSCache, "k") // invalidation streams up, near cache filled
	cl.Close()
	// The nodes may dial each other meanwhile; stop them too, so what is
	// left can only be the client's.
	c.Shutdown()
	goleak.VerifyNone(t, before)
}

func TestClient_FollowsARingChangeMidStream(t *testing.T) {
	c := clustertest.Start(t, 2, clustertest.Options{})
	cl := newClient(t, c, client.Options{})
	updates := cl.Stats().RingUpdates
	c.AddNode()
	c.WaitConverged()
	waitRingNodes(t, cl, 3)
	if cl.Stats().RingUpdates <= updates {
		t.Fatal("no ring update streamed")
	}
	ctx := context.Background()
	before := forwards(t, c)
	for k := range 100 {
		if err := cl.Set(ctx, clustertest.NSCache, fmt.Sprint(k), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := forwards(t, c) - before; n != 0 {
		t.Fatalf("%d forwarding hops after the client followed the new ring", n)
	}
}
