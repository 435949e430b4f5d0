package peer_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/peer"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// peerServer answers Forward with forward(ctx).
type peerServer struct {
	pb.UnimplementedPeerServer
	forward func(ctx context.Context) (*pb.ForwardResponse, error)
}

func (s *peerServer) Forward(ctx context.Context, _ *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	return s.forward(ctx)
}

// serve starts a real gRPC server with the Peer service on loopback and
// returns it with its member; it is stopped at cleanup.
func serve(t *testing.T, forward func(ctx context.Context) (*pb.ForwardResponse, error)) (*grpc.Server, ring.Member) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterPeerServer(srv, &peerServer{forward: forward})
	done := make(chan struct{})
	go func() { _ = srv.Serve(lis); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return srv, ring.Member{Name: "p", Addr: lis.Addr().String()}
}

func newPool(t *testing.T, linger time.Duration) *peer.Pool {
	p := peer.New(peer.Config{Linger: linger})
	t.Cleanup(p.Close)
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPool_NoListenerIsUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	p := newPool(t, time.Minute)
	_, err = p.Forward(ctxT(t), ring.Member{Name: "gone", Addr: addr}, &pb.ForwardRequest{})
	if !errors.Is(err, peer.ErrUnreachable) || errors.Is(err, peer.ErrConnectionLost) {
		t.Fatalf("Forward to no listener = %v, want ErrUnreachable", err)
	}
}

func TestPool_PeersOwnAnswerPassesThrough(t *testing.T) {
	_, m := serve(t, func(context.Context) (*pb.ForwardResponse, error) {
		return nil, reason.Status(codes.Unavailable, reason.BackendUnavailable, "database down", 0).Err()
	})
	p := newPool(t, time.Minute)
	_, err := p.Forward(ctxT(t), m, &pb.ForwardRequest{})
	if errors.Is(err, peer.ErrUnreachable) || errors.Is(err, peer.ErrConnectionLost) {
		t.Fatalf("the peer's own UNAVAILABLE was taken for a transport failure: %v", err)
	}
	if reason.Of(err) != reason.BackendUnavailable || status.Code(err) != codes.Unavailable {
		t.Fatalf("Forward = %v (reason %q), want the peer's status unchanged", err, reason.Of(err))
	}
}

func TestPool_ConnectionBrokenMidCallIsConnectionLost(t *testing.T) {
	arrived := make(chan struct{})
	srv, m := serve(t, func(ctx context.Context) (*pb.ForwardResponse, error) {
		close(arrived)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	p := newPool(t, time.Minute)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Forward(ctxT(t), m, &pb.ForwardRequest{})
		errc <- err
	}()
	<-arrived
	srv.Stop() // the peer crashes with the call in flight
	if err := <-errc; !errors.Is(err, peer.ErrConnectionLost) {
		t.Fatalf("Forward cut mid-call = %v, want ErrConnectionLost (the peer may have applied it)", err)
	}
}

// A member that left the ring keeps its connection for the linger, so
// calls in flight to a draining node finish; then it is closed.
func TestPool_RetainClosesDepartedAfterLinger(t *testing.T) {
	_, a := serve(t, func(context.Context) (*pb.ForwardResponse, error) { return &pb.ForwardResponse{}, nil })
	_, b := serve(t, func(context.Context) (*pb.ForwardResponse, error) { return &pb.ForwardResponse{}, nil })
	p := newPool(t, 20*time.Millisecond)
	ca, err := p.Conn(a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := p.Conn(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p.Retain([]ring.Member{a})
	waitState(t, cb, connectivity.Shutdown)
	if ca.GetState() == connectivity.Shutdown {
		t.Fatal("the connection to a member still in the ring was closed")
	}
	if again, err := p.Conn(b.Addr); err != nil || again == cb {
		t.Fatalf("Conn to a departed member that returns = %v, %v; want a new connection", again, err)
	}
}

// Close closes every connection at once, those lingering included, and
// the pool hands out no more.
func TestPool_CloseEndsLingeringConnections(t *testing.T) {
	_, a := serve(t, func(context.Context) (*pb.ForwardResponse, error) { return &pb.ForwardResponse{}, nil })
	p := peer.New(peer.Config{Linger: time.Hour})
	ca, err := p.Conn(a.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Forward(ctxT(t), a, &pb.ForwardRequest{}); err != nil {
		t.Fatal(err)
	}
	p.Retain(nil) // a lingers for an hour
	p.Close()
	if s := ca.GetState(); s != connectivity.Shutdown {
		t.Fatalf("a lingering connection is %v after Close, want closed", s)
	}
	if _, err := p.Forward(ctxT(t), a, &pb.ForwardRequest{}); !errors.Is(err, peer.ErrUnreachable) || !errors.Is(err, peer.ErrClosed) {
		t.Fatalf("Forward after Close = %v, want ErrUnreachable wrapping ErrClosed", err)
	}
}

func waitState(t *testing.T, cc *grpc.ClientConn, want connectivity.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s := cc.GetState(); s != want; s = cc.GetState() {
		if time.Now().After(deadline) {
			t.Fatalf("connection is %v, want %v", s, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A member back at its address after a restart is dialled again when a
// table lists it (Redial), not after the backoff its absence built up:
// until then every call to it, replication included, would fail fast.
func TestPool_RedialDialsAMemberBackAtOnce(t *testing.T) {
	m := ring.Member{Name: "back", Addr: downAddr(t)} // the member is down
	// A backoff far longer than the test: only Redial can end it.
	p := peer.New(peer.Config{Linger: time.Minute, DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{BaseDelay: time.Hour, Multiplier: 1, MaxDelay: time.Hour}, MinConnectTimeout: time.Second})}})
	t.Cleanup(p.Close)
	if _, err := p.Forward(ctxT(t), m, &pb.ForwardRequest{}); !errors.Is(err, peer.ErrUnreachable) {
		t.Fatalf("Forward to a member that is down = %v, want ErrUnreachable", err)
	}
	cc, err := p.Conn(m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, cc, connectivity.TransientFailure)

	lis, err := net.Listen("tcp", m.Addr) // back, at the same address
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterPeerServer(srv, &peerServer{forward: func(context.Context) (*pb.ForwardResponse, error) { return &pb.ForwardResponse{}, nil }})
	done := make(chan struct{})
	go func() { _ = srv.Serve(lis); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	if _, err := p.Forward(ctxT(t), m, &pb.ForwardRequest{}); !errors.Is(err, peer.ErrUnreachable) {
		t.Fatalf("Forward before a table lists the member again = %v; want it failing fast (the test shows nothing otherwise)", err)
	}
	p.Redial([]ring.Member{m})
	waitState(t, cc, connectivity.Ready)
	if _, err := p.Forward(ctxT(t), m, &pb.ForwardRequest{}); err != nil {
		t.Fatalf("Forward once a table lists the member again: %v", err)
	}
}

// downAddr returns a loopback address where connections are refused: a TCP
// socket bound there that does not listen. It keeps the port from any other
// process until the test ends (a port closed and listened on again later
// may be taken meanwhile: go test runs packages side by side), and, bound
// with SO_REUSEADDR, it lets the test listen there itself.
func downAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
