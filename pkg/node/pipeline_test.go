package node_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func pipeGet(id uint64, ns, key string) *pb.PipelineOp {
	return &pb.PipelineOp{Id: id, Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: ns, Key: key}}}
}

func pipeSet(id uint64, ns, key, value string) *pb.PipelineOp {
	return &pb.PipelineOp{Id: id, Op: &pb.PipelineOp_Set{Set: &pb.SetRequest{Namespace: ns, Key: key, Value: []byte(value)}}}
}

// recvResults reads frames until it has n results, keyed by id.
func recvResults(t *testing.T, stream pb.Cache_PipelineClient, n int) map[uint64]*pb.PipelineResult {
	t.Helper()
	got := map[uint64]*pb.PipelineResult{}
	for len(got) < n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d of %d results: %v", len(got), n, err)
		}
		for _, r := range resp.Results {
			if _, dup := got[r.Id]; dup {
				t.Fatalf("result %d came twice", r.Id)
			}
			got[r.Id] = r
		}
	}
	return got
}

// One frame mixing local and forwarded keys, a read-through miss, writes
// and bad ops: every op gets its own result, failures do not touch others.
func TestPipeline_MixedFrame(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	c.DB.Put("u1", []byte("alice"))
	local := keyOwnedBy(t, c, clustertest.NSCache, 0)
	remote := keyOwnedBy(t, c, clustertest.NSCache, 1)

	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	send := func(ops ...*pb.PipelineOp) {
		t.Helper()
		if err := stream.Send(&pb.PipelineRequest{Ops: ops}); err != nil {
			t.Fatal(err)
		}
	}
	send(pipeSet(1, clustertest.NSCache, local, "L"), pipeSet(2, clustertest.NSCache, remote, "R"))
	w := recvResults(t, stream, 2)
	for id, r := range w {
		if r.ErrorCode != 0 {
			t.Fatalf("set %d failed: %s", id, r.ErrorMessage)
		}
	}
	send(
		pipeGet(10, clustertest.NSCache, local),
		pipeGet(11, clustertest.NSCache, remote),
		pipeGet(12, clustertest.NSUsers, "u1"),      // loaded by its owner
		pipeGet(13, clustertest.NSCache, "missing"), // a miss, not an error
		pipeGet(14, "nope", "k"),                    // unknown namespace
		pipeGet(15, clustertest.NSCache, ""),        // empty key
		&pb.PipelineOp{Id: 16},                      // no op at all
	)
	got := recvResults(t, stream, 7)
	// Ops of one frame run concurrently when they wait (a forward, a load):
	// a Delete of the remote key goes in a frame of its own.
	send(&pb.PipelineOp{Id: 17, Op: &pb.PipelineOp_Delete{Delete: &pb.DeleteRequest{Namespace: clustertest.NSCache, Key: remote}}})
	got[17] = recvResults(t, stream, 1)[17]
	check := func(id uint64, found bool, value string) {
		t.Helper()
		r := got[id]
		if r.ErrorCode != 0 || r.Found != found || string(r.Value) != value {
			t.Errorf("op %d: found=%v value=%q error=%d %s; want found=%v value=%q", id, r.Found, r.Value, r.ErrorCode, r.ErrorMessage, found, value)
		}
	}
	check(10, true, "L")
	check(11, true, "R")
	check(12, true, "alice")
	check(13, false, "")
	check(17, false, "")
	for id, code := range map[uint64]codes.Code{14: codes.NotFound, 15: codes.InvalidArgument, 16: codes.InvalidArgument} {
		if got[id].ErrorCode != int32(code) || got[id].ErrorMessage == "" {
			t.Errorf("op %d: error %d %q, want %s with a message", id, got[id].ErrorCode, got[id].ErrorMessage, code)
		}
	}
	// The Delete went to the owner: gone there too.
	if r, err := c.Cache(1).Get(ctxT(t), &pb.GetRequest{Namespace: clustertest.NSCache, Key: remote}); err != nil || r.Found {
		t.Errorf("after the pipelined Delete the owner has found=%v err=%v", r.GetFound(), err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend the stream should end cleanly, got %v", err)
	}
}

// A hit is answered in the response to its own frame, before a load that
// waits on the database: results are not held in request order.
func TestPipeline_HitNotBlockedBySlowLoad(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	if _, err := c.Cache(0).Set(ctxT(t), &pb.SetRequest{Namespace: clustertest.NSCache, Key: "hot", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	release := c.DB.Block()
	defer release()
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(1, clustertest.NSUsers, "slow"), pipeGet(2, clustertest.NSCache, "hot")}}); err != nil {
		t.Fatal(err)
	}
	first := recvResults(t, stream, 1)
	if r, ok := first[2]; !ok || string(r.Value) != "v" {
		t.Fatalf("first result %v, want the hit (id 2) while the load waits", first)
	}
	release()
	if r := recvResults(t, stream, 1)[1]; r == nil || r.ErrorCode != 0 {
		t.Fatalf("the load's result: %v", r)
	}
}

func TestPipeline_OversizedFrameEndsTheStream(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{Configure: func(_ int, cfg *node.Config) { cfg.MaxBatchKeys = 4 }})
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]*pb.PipelineOp, 5)
	for i := range ops {
		ops[i] = pipeGet(uint64(i), clustertest.NSCache, "k")
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 4") {
		t.Fatalf("got %v, want INVALID_ARGUMENT naming the limit", err)
	}
}

// A draining node answers what it has read, then ends the stream with its
// not-ready status (which tells clients the rest was not applied).
func TestPipeline_DrainEndsStreamAfterAnswering(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	release := c.DB.Block()
	// A connection of its own: the harness closes its own when it stops the node.
	cc, err := grpc.NewClient(c.Node(0).GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := pb.NewCacheClient(cc).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(1, clustertest.NSUsers, "waiting")}}); err != nil {
		t.Fatal(err)
	}
	// The load is in progress once the database has been asked.
	clustertest.Eventually(t, 5*time.Second, func() error {
		if c.DB.Loads() == 0 {
			return errors.New("no load yet")
		}
		return nil
	})
	n := c.Node(0)
	stopped := make(chan struct{})
	go func() { c.Stop(0); close(stopped) }()
	clustertest.Eventually(t, 5*time.Second, func() error { // the drain has started
		if n.Ready() {
			return errors.New("still ready")
		}
		return nil
	})
	release()
	r := recvResults(t, stream, 1)[1]
	if r.ErrorCode != 0 {
		t.Fatalf("the op read before the drain failed: %s", r.ErrorMessage)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable || !strings.HasPrefix(status.Convert(err).Message(), "node not ready") {
		t.Fatalf("stream end %v, want UNAVAILABLE node not ready", err)
	}
	<-stopped
}

// stalledClient is the node's side of a Pipeline stream whose client sends
// frames (through frames) and, once stall is set, reads no answer: a Send
// then waits until the stream ends.
type stalledClient struct {
	grpc.ServerStream
	ctx     context.Context
	frames  chan *pb.PipelineRequest
	stall   atomic.Bool
	sends   atomic.Int64 // Sends begun
	stalled atomic.Int64 // Sends waiting on the client
}

func (s *stalledClient) Context() context.Context { return s.ctx }

func (s *stalledClient) Recv() (*pb.PipelineRequest, error) {
	select {
	case f := <-s.frames:
		return f, nil
	case <-s.ctx.Done():
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
}

func (s *stalledClient) Send(*pb.PipelineResponse) error {
	s.sends.Add(1)
	if !s.stall.Load() {
		return nil
	}
	s.stalled.Add(1)
	<-s.ctx.Done()
	return status.FromContextError(s.ctx.Err()).Err()
}

// A client that sends frames and reads no answers cannot make the node queue
// answers without bound: while a send waits on the client, the stream reads
// only a few more frames, and HTTP/2 flow control then holds the client
// back. Here the send that waits is that of a load's result, so the frame
// reader itself never waits on the client.
func TestPipeline_ClientThatDoesNotReadIsHeldBack(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	release := c.DB.Block()
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &stalledClient{ctx: ctx, frames: make(chan *pb.PipelineRequest)}
	handlerDone := make(chan error, 1)
	go func() { handlerDone <- c.Node(0).ServePipeline(client) }()

	client.frames <- &pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(1, clustertest.NSUsers, "slow")}}
	clustertest.Eventually(t, 5*time.Second, func() error { // the frame is acknowledged
		if client.sends.Load() == 0 {
			return errors.New("no send yet")
		}
		return nil
	})
	client.stall.Store(true)
	release() // the load's result: its send waits on the client
	clustertest.Eventually(t, 5*time.Second, func() error {
		if client.stalled.Load() == 0 {
			return errors.New("no send waits yet")
		}
		return nil
	})

	const frames = 200
	var read atomic.Int64
	go func() {
		for i := range frames {
			select {
			case client.frames <- &pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(uint64(i+2), clustertest.NSCache, "miss")}}:
				read.Add(1)
			case <-ctx.Done():
				return
			}
		}
	}()
	last, still := int64(-1), 0
	clustertest.Eventually(t, 10*time.Second, func() error {
		n := read.Load()
		if n == frames {
			t.Fatalf("the node read all %d frames while it could send no answer: it queues answers without bound", frames)
		}
		if n != last {
			last, still = n, 0
		} else {
			still++
		}
		if still < 20 {
			return fmt.Errorf("%d frames read, still reading", n)
		}
		return nil
	})
	cancel() // the client goes away: the stream ends
	select {
	case <-handlerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not return after its client went away")
	}
}

// An op that waits gives up after its own timeout, as a unary call's
// deadline would make it; the stream goes on answering.
func TestPipeline_OpTimeoutEndsAWaitingOp(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	if _, err := c.Cache(0).Set(ctxT(t), &pb.SetRequest{Namespace: clustertest.NSCache, Key: "hot", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	release := c.DB.Block()
	defer release()
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	slow := pipeGet(1, clustertest.NSUsers, "blocked")
	slow.Timeout = durationpb.New(50 * time.Millisecond)
	if err := stream.Send(&pb.PipelineRequest{Ops: []*pb.PipelineOp{slow}}); err != nil {
		t.Fatal(err)
	}
	r := recvResults(t, stream, 1)[1]
	if codes.Code(r.ErrorCode) != codes.DeadlineExceeded {
		t.Fatalf("the blocked load answered %d %q, want DEADLINE_EXCEEDED after its 50 ms", r.ErrorCode, r.ErrorMessage)
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(2, clustertest.NSCache, "hot")}}); err != nil {
		t.Fatal(err)
	}
	if r := recvResults(t, stream, 1)[2]; string(r.Value) != "v" {
		t.Fatalf("hit after the timeout: %v", r)
	}
}

// Answers of more value bytes than one response should carry are split.
func TestPipeline_LargeAnswersSpreadOverResponses(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	value := strings.Repeat("x", 60<<10)
	const keys = 100 // 6 MB of values
	for i := range keys {
		if _, err := c.Cache(0).Set(ctxT(t), &pb.SetRequest{Namespace: clustertest.NSCache, Key: fmt.Sprint("big", i), Value: []byte(value)}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]*pb.PipelineOp, keys)
	for i := range ops {
		ops[i] = pipeGet(uint64(i), clustertest.NSCache, fmt.Sprint("big", i))
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	got, responses := 0, 0
	for got < keys {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		responses++
		size := 0
		for _, r := range resp.Results {
			if len(r.Value) != len(value) {
				t.Fatalf("result %d: %d bytes", r.Id, len(r.Value))
			}
			size += len(r.Value)
		}
		if size > 4<<20+len(value) {
			t.Fatalf("one response carried %d value bytes", size)
		}
		got += len(resp.Results)
	}
	if responses < 2 {
		t.Fatalf("%d values of 60 KiB came in %d response", keys, responses)
	}
}

// A pipelined miss that loads counts one Get and one miss, as a unary Get.
func TestPipeline_MissThatLoadsCountsOnce(t *testing.T) {
	c := clustertest.Start(t, 1, clustertest.Options{})
	c.DB.Put("u9", []byte("bob"))
	stream, err := c.Cache(0).Pipeline(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.PipelineRequest{Ops: []*pb.PipelineOp{pipeGet(1, clustertest.NSUsers, "u9")}}); err != nil {
		t.Fatal(err)
	}
	if r := recvResults(t, stream, 1)[1]; string(r.Value) != "bob" {
		t.Fatalf("load: %v", r)
	}
	ns := nsStats(stats(t, c, 0), clustertest.NSUsers)
	if ns.Gets != 1 || ns.Misses != 1 || ns.Loads != 1 {
		t.Fatalf("gets %d misses %d loads %d, want 1 each", ns.Gets, ns.Misses, ns.Loads)
	}
}
