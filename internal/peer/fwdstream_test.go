package peer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/peer"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// streamServer serves ForwardStream (and Forward, counting the calls): it
// answers each op of a frame with the op's key as its value, after hold
// returns, and acknowledges every frame.
type streamServer struct {
	pb.UnimplementedPeerServer
	hold    func(frame *pb.ForwardStreamRequest)
	frames  atomic.Int64
	ops     atomic.Int64
	unary   atomic.Int64
	maxOps  atomic.Int64
	gotHLC  atomic.Uint64
	streams atomic.Int64
}

func (s *streamServer) Forward(_ context.Context, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	s.unary.Add(1)
	resp := &pb.ForwardResponse{Hlc: 7}
	for _, op := range req.Ops {
		resp.Results = append(resp.Results, &pb.PipelineResult{Id: op.Id, Found: true, Value: []byte(op.GetGet().GetKey())})
	}
	return resp, nil
}

func (s *streamServer) ForwardStream(stream pb.Peer_ForwardStreamServer) error {
	s.streams.Add(1)
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		s.frames.Add(1)
		s.ops.Add(int64(len(req.Ops)))
		s.gotHLC.Store(req.Hlc)
		for n := int64(len(req.Ops)); ; {
			m := s.maxOps.Load()
			if n <= m || s.maxOps.CompareAndSwap(m, n) {
				break
			}
		}
		if s.hold != nil {
			s.hold(req)
		}
		resp := &pb.ForwardStreamResponse{Hlc: 9, FramesRead: 1}
		// Answer in reverse order: results are matched by id, not place.
		for i := len(req.Ops) - 1; i >= 0; i-- {
			op := req.Ops[i]
			resp.Results = append(resp.Results, &pb.PipelineResult{Id: op.Id, Found: true, Value: []byte(op.GetGet().GetKey())})
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func serveStream(t *testing.T, s *streamServer) (*grpc.Server, ring.Member) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterPeerServer(srv, s)
	done := make(chan struct{})
	go func() { _ = srv.Serve(lis); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return srv, ring.Member{Name: "p", Addr: lis.Addr().String()}
}

func gets(prefix string, n int) *pb.ForwardRequest {
	req := &pb.ForwardRequest{From: "me", Hlc: 5}
	for i := range n {
		req.Ops = append(req.Ops, &pb.PipelineOp{Id: uint64(i), Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Key: fmt.Sprintf("%s-%d", prefix, i)}}})
	}
	return req
}

// checkAnswers fails unless resp answers req in request order, with the
// request's own ids.
func checkAnswers(t *testing.T, req *pb.ForwardRequest, resp *pb.ForwardResponse) {
	t.Helper()
	if len(resp.Results) != len(req.Ops) {
		t.Fatalf("%d results for %d ops", len(resp.Results), len(req.Ops))
	}
	for i, r := range resp.Results {
		if r.Id != req.Ops[i].Id || string(r.Value) != req.Ops[i].GetGet().GetKey() {
			t.Fatalf("result %d = id %d value %q; want id %d value %q", i, r.Id, r.Value, req.Ops[i].Id, req.Ops[i].GetGet().GetKey())
		}
	}
}

// Batches forwarded at once from many goroutines share one stream and
// gather into frames; each gets its own results, in its own order and
// with its own ids, and the peer's clock.
func TestForwardStream_BatchesShareFramesAndGetTheirOwnResults(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s := &streamServer{hold: func(*pb.ForwardStreamRequest) { once.Do(func() { <-release }) }}
	_, m := serveStream(t, s)
	p := newPool(t, 0)
	const callers = 40
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			req := gets(fmt.Sprintf("c%d", c), 1+c%5)
			want := gets(fmt.Sprintf("c%d", c), 1+c%5) // req's ids are rewritten while on the stream
			resp, err := p.Forward(ctxT(t), m, req)
			if err != nil {
				errs <- err
				return
			}
			if resp.Hlc != 9 {
				errs <- fmt.Errorf("hlc %d, want the peer's 9", resp.Hlc)
				return
			}
			checkAnswers(t, want, resp)
		})
		if c == 0 {
			for s.frames.Load() == 0 { // the first frame is in, and held
				runtime.Gosched()
			}
		}
	}
	for p.Queued(m.Addr) < callers-1 { // every other batch waits behind it
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s.unary.Load() != 0 || s.streams.Load() != 1 {
		t.Fatalf("unary calls %d, streams %d; want 0 and 1", s.unary.Load(), s.streams.Load())
	}
	if f := s.frames.Load(); f != 2 {
		t.Fatalf("%d frames for %d batches (largest %d ops); want 2: the first, held, and one with every batch queued behind it", f, callers, s.maxOps.Load())
	}
	if s.gotHLC.Load() != 5 {
		t.Fatalf("the frame carried hlc %d, want the sender's 5", s.gotHLC.Load())
	}
}

// A peer without ForwardStream (an older version) is called with Forward,
// and the batch is answered all the same.
func TestForwardStream_PeerWithoutItGetsUnaryCalls(t *testing.T) {
	_, m := serve(t, func(context.Context) (*pb.ForwardResponse, error) {
		return &pb.ForwardResponse{Results: []*pb.PipelineResult{{Id: 0, Found: true}}}, nil
	})
	p := newPool(t, 0)
	for range 3 {
		resp, err := p.Forward(ctxT(t), m, gets("k", 1))
		if err != nil || len(resp.Results) != 1 || !resp.Results[0].Found {
			t.Fatalf("Forward to a peer without the stream = %v, %v", resp, err)
		}
	}
}

// A peer that crashes with batches on the stream fails them with
// ErrConnectionLost (they may have been applied); the next batch opens a
// new stream.
func TestForwardStream_PeerGoneMidFrameIsConnectionLost(t *testing.T) {
	arrived, stuck := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	var once sync.Once
	s := &streamServer{hold: func(*pb.ForwardStreamRequest) { once.Do(func() { close(arrived) }); <-stuck }}
	srv, m := serveStream(t, s)
	p := newPool(t, 0)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Forward(ctxT(t), m, gets("k", 3))
		errc <- err
	}()
	<-arrived
	srv.Stop()
	if err := <-errc; !errors.Is(err, peer.ErrConnectionLost) {
		t.Fatalf("Forward cut mid-frame = %v, want ErrConnectionLost", err)
	}
}

// A caller whose deadline passes gets DEADLINE_EXCEEDED; the stream goes
// on serving the others.
func TestForwardStream_CallerDeadline(t *testing.T) {
	block := make(chan struct{})
	var first atomic.Bool
	s := &streamServer{hold: func(*pb.ForwardStreamRequest) {
		if first.CompareAndSwap(false, true) {
			<-block
		}
	}}
	_, m := serveStream(t, s)
	p := newPool(t, 0)
	ctx, cancel := context.WithCancel(ctxT(t))
	errc := make(chan error, 1)
	go func() {
		_, err := p.Forward(ctx, m, gets("slow", 2))
		errc <- err
	}()
	for s.frames.Load() == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Fatalf("Forward whose caller gave up = %v, want CANCELED", err)
	}
	close(block)
	req := gets("next", 2)
	resp, err := p.Forward(ctxT(t), m, req)
	if err != nil {
		t.Fatal(err)
	}
	checkAnswers(t, gets("next", 2), resp)
}

// Batches routed by different tables never share a frame: the owner
// decides by a frame's version whether to serve its ops or send them on.
func TestForwardStream_BatchesOfTwoTablesGoInFramesOfTheirOwn(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	var mixed atomic.Int64
	s := &streamServer{hold: func(f *pb.ForwardStreamRequest) {
		for _, op := range f.Ops {
			if want := fmt.Sprintf("v%d-", f.TableVersion>>16); op.GetGet().GetKey()[:len(want)] != want {
				mixed.Add(1)
			}
		}
		once.Do(func() { <-release })
	}}
	_, m := serveStream(t, s)
	p := newPool(t, 0)
	const callers = 40
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			v := uint64(1 + c%2)
			req := gets(fmt.Sprintf("v%d-c%d", v, c), 3)
			req.TableVersion = v<<16 | 1
			if _, err := p.Forward(ctxT(t), m, req); err != nil {
				t.Error(err)
			}
		})
		if c == 0 {
			spin(t, "the first frame in, and held", func() bool { return s.frames.Load() > 0 })
		}
	}
	spin(t, "every other caller's batch queued", func() bool { return p.Queued(m.Addr) >= callers-1 })
	close(release)
	wg.Wait()
	if n := mixed.Load(); n != 0 {
		t.Fatalf("%d ops went in a frame of another table's version", n)
	}
	if f := s.frames.Load(); f < 3 {
		t.Fatalf("%d frames for batches of two tables queued behind a held one; want at least 3", f)
	}
}

// spin yields until cond holds, and fails the test after 10 s (a forward
// that failed would otherwise leave it spinning until the test binary's
// timeout).
func spin(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		runtime.Gosched()
	}
}
