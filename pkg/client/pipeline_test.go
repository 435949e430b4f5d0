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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// heldPipeline starts a one-node cluster and a client with its stream to
// the node open, and pretends a send is in progress there, so calls only
// queue until the test calls release (what the sending caller does when its
// Send returns). setup, when not nil, runs with the client before that.
func heldPipeline(t *testing.T, setup func(*Client)) (cl *Client, queued func() int, release func()) {
	t.Helper()
	c := clustertest.Start(t, 1, clustertest.Options{})
	addr := c.Node(0).GRPCAddr()
	cl, err := New(Options{Seeds: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if setup != nil {
		setup(cl)
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
	p.mu.Lock()
	s.sending = true
	p.mu.Unlock()
	queued = func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(s.queue)
	}
	release = func() {
		p.mu.Lock()
		p.flush(s)
	}
	return cl, queued, release
}

// waitQueued polls until at least want calls are queued.
func waitQueued(t *testing.T, queued func() int, want func() int) {
	t.Helper()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n, w := queued(), want(); n < w {
			return fmt.Errorf("%d calls queued, want %d", n, w)
		}
		return nil
	})
}

// Calls that queue while a frame is being sent all go in the next frame,
// and each caller gets its own result.
func TestPipeline_QueuedCallsShareOneFrame(t *testing.T) {
	cl, queued, release := heldPipeline(t, func(cl *Client) {
		for i := range 10 {
			if err := cl.Set(testCtx(t), clustertest.NSCache, fmt.Sprint("k", i), []byte(fmt.Sprint("v", i)), 0); err != nil {
				t.Fatal(err)
			}
		}
	})
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
	waitQueued(t, queued, func() int { return calls })
	release()
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
	gets := fake.gets
	fake.mu.Unlock()
	if gets != 3 {
		t.Fatalf("the node served %d unary Gets, want 3", gets)
	}
	n, _ := cl.node(lis.Addr().String())
	if n.pipelined() {
		t.Fatal("the client still means to use Pipeline with a node that lacks it")
	}
	// A minute later the client asks again (the node may have been
	// upgraded); this one still lacks it, so the call falls back once more.
	n.pipe.unsupportedAt.Store(time.Now().Add(-2 * pipelineRetryUnsupported).UnixNano())
	if !n.pipelined() {
		t.Fatal("the client never tries Pipeline again")
	}
	if v, _, err := cl.Get(testCtx(t), "ns", "again"); err != nil || string(v) != "unary:again" {
		t.Fatalf("Get after the retry period: %q %v", v, err)
	}
	if n.pipelined() {
		t.Fatal("a second UNIMPLEMENTED did not send the client back to unary calls")
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

// Calls that gather while the window is full go out in frames a node
// accepts: a frame is bounded in bytes too, not only in ops, so concurrent
// large Sets that each fit the namespace do not together exceed the node's
// message size limit (4 MiB) and fail the stream.
func TestPipeline_QueuedLargeSetsFitTheNodesMessageLimit(t *testing.T) {
	cl, queued, release := heldPipeline(t, nil)
	const calls = 80 // × 64 KiB: 5 MiB in all
	value := make([]byte, 1<<16)
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() { errs[i] = cl.Set(testCtx(t), clustertest.NSCache, fmt.Sprint("big", i), value, 0) })
	}
	waitQueued(t, queued, func() int { return calls })
	release()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// The caller that opens a node's stream is bound by its own deadline, like
// the callers that wait for it: a node that accepts connections but never
// answers (or a dial option that waits for the node to be ready) must not
// hold it past its deadline.
func TestPipeline_StreamOpenHonoursTheCallersDeadline(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var conns []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() { // accepts, and never speaks HTTP/2
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	cl, err := New(Options{Seeds: []string{lis.Addr().String()}, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := cl.Get(ctx, "ns", "k")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a Get from a node that never answers succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a Get with a 200 ms deadline still waits after 5 s: it is opening the node's stream")
	}
}

// A key that is not valid UTF-8 cannot be encoded (proto3 strings); its call
// fails alone, as a unary call would, instead of failing the frame's send
// and with it the stream and every call on it.
func TestPipeline_InvalidUTF8KeyFailsAlone(t *testing.T) {
	cl, queued, release := heldPipeline(t, nil)

	var wg sync.WaitGroup
	var goodErr, badErr error
	badDone := make(chan struct{})
	wg.Go(func() { goodErr = cl.Set(testCtx(t), clustertest.NSCache, "good", []byte("v"), 0) })
	wg.Go(func() {
		defer close(badDone)
		_, _, badErr = cl.Get(testCtx(t), clustertest.NSCache, "bad\xff")
	})
	waitQueued(t, queued, func() int {
		select {
		case <-badDone:
			return 1 // the good call queued, the bad one failed before
		default:
			return 2 // both queued
		}
	})
	release()
	wg.Wait()
	if goodErr != nil {
		t.Fatalf("a valid Set failed along with a call whose key is not UTF-8: %v", goodErr)
	}
	if status.Code(badErr) != codes.InvalidArgument {
		t.Fatalf("the Get of a key that is not UTF-8: %v, want INVALID_ARGUMENT", badErr)
	}
}
