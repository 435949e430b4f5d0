package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/ringcache/ringcache/internal/clustertest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Calls that queue while a frame is being sent all go in the next frame,
// and each caller gets its own result.
func TestPipeline_QueuedCallsShareOneFrame(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	addr := c.Node(0).GRPCAddr()
	cl, err := New(Options{Seeds: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 10 {
		if err := cl.Set(testCtx(t), clustertest.NSCache, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	n, err := cl.node(addr)
	if err != nil {
		t.Fatal(err)
	}
	p := n.pipe
	s, err := p.stream(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// Pretend a send is in progress: callers only queue.
	p.mu.Lock()
	s.sending = true
	p.mu.Unlock()
	framesBefore := cl.Stats().PipelineFrames

	const calls = 10
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			v, found, err := cl.Get(testCtx(t), clustertest.NSCache, fmt.Sprint("k", i))
			if err == nil && (!found || string(v) != fmt.Sprint("v", i)) {
				err = fmt.Errorf("k%d: found=%v value %q", i, found, v)
			}
			errs[i] = err
		})
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(s.queue) < calls {
			return fmt.Errorf("%d calls queued", len(s.queue))
		}
		return nil
	})
	p.mu.Lock()
	p.flush(s) // what the sending caller does when its Send returns
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := cl.Stats().PipelineFrames - framesBefore; got != 1 {
		t.Fatalf("%d queued calls took %d frames, want 1", calls, got)
	}
}

// cacheOnlyUnary is a node that predates Pipeline: it serves unary Gets.
type cacheOnlyUnary struct {
	pb.UnimplementedCacheServer
	mu   sync.Mutex
	gets int
}

func (s *cacheOnlyUnary) Get(_ context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	s.mu.Lock()
	s.gets++
	s.mu.Unlock()
	return &pb.GetResponse{Found: true, Value: []byte("unary:" + req.Key)}, nil
}

func TestPipeline_FallsBackToUnaryWhenTheNodeLacksIt(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fake := &cacheOnlyUnary{}
	pb.RegisterCacheServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	cl, err := New(Options{Seeds: []string{lis.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 3 {
		v, found, err := cl.Get(testCtx(t), "ns", fmt.Sprint("k", i))
		if err != nil || !found || string(v) != fmt.Sprint("unary:k", i) {
			t.Fatalf("Get %d: %q %v %v", i, v, found, err)
		}
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.gets != 3 {
		t.Fatalf("the node served %d unary Gets, want 3", fake.gets)
	}
	n, _ := cl.node(lis.Addr().String())
	if n.pipelined() {
		t.Fatal("the client still means to use Pipeline with a node that lacks it")
	}
}

func TestPipeline_UnaryOptionSendsNoFrames(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	cl, err := New(Options{Seeds: []string{c.Node(0).GRPCAddr()}, Unary: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Set(testCtx(t), clustertest.NSCache, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _, err := cl.Get(testCtx(t), clustertest.NSCache, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get: %q %v", v, err)
	}
	if f := cl.Stats().PipelineFrames; f != 0 {
		t.Fatalf("%d pipeline frames with Options.Unary", f)
	}
}

// A caller whose context ends stops waiting; the stream goes on serving
// the others.
func TestPipeline_CallerDeadlineLeavesStreamUsable(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	cl, err := New(Options{Seeds: []string{c.Node(0).GRPCAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	release := c.DB.Block()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := cl.Get(ctx, clustertest.NSUsers, "blocked"); err == nil {
		t.Fatal("a Get waiting on a blocked load returned before its deadline")
	}
	if err := cl.Set(testCtx(t), clustertest.NSCache, "k", []byte("v"), 0); err != nil {
		t.Fatalf("the stream is unusable after a caller gave up: %v", err)
	}
	if f := cl.Stats().PipelineFrames; f < 2 {
		t.Fatalf("%d frames: the calls did not use the pipeline", f)
	}
}
