package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The node's bounds on streams and connections (limits.go), with real
// gRPC on loopback. Clients that stand for other hosts dial from
// 127.0.0.2 and 127.0.0.3: the node takes connections from 127.0.0.1, its
// own host, for its peers'.

// startLimited starts a lone ready node with a pure-cache namespace
// "cache" and cfg's bounds.
func startLimited(t *testing.T, edit func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Config{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "cache", TTL: time.Hour}}},
		Logger:     clustertest.Logger(t, "n1", nil),
	}
	edit(&cfg)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	clustertest.Eventually(t, 5*time.Second, n.NotReady)
	return n
}

// dialFrom returns a client of n dialling from the loopback address src.
func dialFrom(t *testing.T, n *node.Node, src string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	cc, err := grpc.NewClient("passthrough:///"+n.GRPCAddr(), append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// smallWindow makes a client advertise HTTP/2's default window and keep
// it: what it does not read fills it fast.
var smallWindow = []grpc.DialOption{grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535)}

// subscribe opens a WatchInvalidations stream and reads its first message.
func subscribe(t *testing.T, ctx context.Context, cc *grpc.ClientConn) pb.Cache_WatchInvalidationsClient {
	t.Helper()
	s, err := pb.NewCacheClient(cc).WatchInvalidations(ctx, &pb.WatchInvalidationsRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return s
}

// endOf reads s until it ends and returns its error.
func endOf(s pb.Cache_WatchInvalidationsClient) error {
	for {
		if _, err := s.Recv(); err != nil {
			return err
		}
	}
}

// Subscribers that stop reading are dropped at the send deadline, Sets go
// on meanwhile, a lone stalled stream ends with RESOURCE_EXHAUSTED, and a
// connection that leaves many streams unread is closed.
func TestLimits_NonReadingSubscribersDroppedWhileSetsGoOn(t *testing.T) {
	n := startLimited(t, func(c *node.Config) { c.StreamSendTimeout = 300 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lone := subscribe(t, ctx, dialFrom(t, n, "127.0.0.2", smallWindow...))
	crowd := dialFrom(t, n, "127.0.0.2", smallWindow...)
	var streams []pb.Cache_WatchInvalidationsClient
	for range 20 {
		streams = append(streams, subscribe(t, ctx, crowd))
	}
	if got := n.WatchStats().Subscribers; got != 21 {
		t.Fatalf("%d subscribers, want 21", got)
	}

	good := pb.NewCacheClient(dialFrom(t, n, "127.0.0.3"))
	key := strings.Repeat("k", 200) // long keys fill the windows sooner
	var slowest time.Duration
	sets := 0
	for i := 0; n.WatchStats().Subscribers > 0; i++ {
		if i > 100000 {
			t.Fatalf("non-reading subscribers never dropped: %+v", n.WatchStats())
		}
		start := time.Now()
		if _, err := good.Set(ctx, &pb.SetRequest{Namespace: "cache", Key: fmt.Sprintf("%s%d", key, i%500), Value: []byte("v")}); err != nil {
			t.Fatalf("Set %d: %v", i, err)
		}
		slowest = max(slowest, time.Since(start))
		sets++
	}
	t.Logf("%d Sets until every non-reading subscriber was dropped; slowest %s", sets, slowest)
	if slowest > time.Second {
		t.Errorf("a Set took %s beside non-reading subscribers", slowest)
	}
	err := endOf(lone)
	if status.Code(err) != codes.ResourceExhausted || reason.Of(err) != reason.Backpressure || !strings.Contains(err.Error(), "fell behind") {
		t.Errorf("the lone stalled stream ended with %v, want RESOURCE_EXHAUSTED (BACKPRESSURE) saying it fell behind", err)
	}
	if st := n.ConnStats(); st.Struck != 1 {
		t.Errorf("connection stats %+v: want the connection with 20 unread streams closed", st)
	}
	for _, s := range streams {
		if code := status.Code(endOf(s)); code != codes.Unavailable && code != codes.ResourceExhausted {
			t.Errorf("a stream of the closed connection ended with %v", code)
		}
	}
}

func TestLimits_SubscribersOverTheBoundRefused(t *testing.T) {
	n := startLimited(t, func(c *node.Config) { c.MaxWatchers = 2 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := dialFrom(t, n, "127.0.0.2")
	subscribe(t, ctx, client)
	subscribe(t, ctx, client)
	s, err := pb.NewCacheClient(client).WatchInvalidations(ctx, &pb.WatchInvalidationsRequest{})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted || reason.RetryDelay(err) <= 0 {
		t.Fatalf("third subscriber: %v, want RESOURCE_EXHAUSTED with a retry delay", err)
	}
	subscribe(t, ctx, dialFrom(t, n, "127.0.0.1")) // a member's host: a peer
	if st := n.WatchStats(); st.Subscribers != 3 || st.Refused != 1 {
		t.Fatalf("watch stats %+v, want 3 subscribers, 1 refused", st)
	}
}

// rawConns opens count TCP connections from src that say nothing, and
// returns those the node did not close at once.
func rawConns(t *testing.T, n *node.Node, src string, count int) (open []net.Conn) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	for range count {
		c, err := d.Dial("tcp", n.GRPCAddr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if !closedWithin(c, 200*time.Millisecond) {
			open = append(open, c)
		}
	}
	return open
}

// closedWithin reports whether the node closed c within d, reading (and
// dropping) what it sends meanwhile, such as its HTTP/2 settings.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// health asks n's gRPC health service over a new connection from src.
func health(t *testing.T, n *node.Node, src string) (healthpb.HealthCheckResponse_ServingStatus, time.Duration, error) {
	cc := dialFrom(t, n, src)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return resp.GetStatus(), time.Since(start), err
}

func TestLimits_ConnectionsOverTheBoundRefusedPeersAdmitted(t *testing.T) {
	n := startLimited(t, func(c *node.Config) { c.MaxConnections, c.PeerConnections = 3, 2 })
	open := rawConns(t, n, "127.0.0.2", 10)
	if len(open) != 3 {
		t.Fatalf("%d of 10 connections held, want the bound, 3", len(open))
	}
	if err := n.NotReady(); err == nil || !strings.Contains(err.Error(), "connection limit") {
		t.Fatalf("NotReady at the bound = %v, want it to say so", err)
	}
	st, took, err := health(t, n, "127.0.0.1")
	if err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING || took > time.Second {
		t.Fatalf("health from a peer's host: %v in %s (%v), want NOT_SERVING at once", st, took, err)
	}
	if _, err := pb.NewCacheClient(dialFrom(t, n, "127.0.0.1")).Set(context.Background(), &pb.SetRequest{Namespace: "cache", Key: "k", Value: []byte("v")}); err != nil {
		t.Fatalf("a peer's call at the client bound: %v", err)
	}
	start := time.Now()
	_, err = pb.NewCacheClient(dialFrom(t, n, "127.0.0.3")).Set(context.Background(), &pb.SetRequest{Namespace: "cache", Key: "k", Value: []byte("v")})
	if status.Code(err) != codes.Unavailable || time.Since(start) > time.Second {
		t.Fatalf("a new client at the bound: %v after %s, want UNAVAILABLE at once", err, time.Since(start))
	}
	for _, c := range open {
		c.Close()
	}
	clustertest.Eventually(t, 5*time.Second, n.NotReady)
	clustertest.Eventually(t, 5*time.Second, func() error {
		if st, _, err := health(t, n, "127.0.0.3"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v, %v", st, err)
		}
		return nil
	})
	if st := n.ConnStats(); st.Refused < 7 {
		t.Errorf("connection stats %+v, want at least 7 refused", st)
	}
}

func TestLimits_SilentAndIdleConnectionsClosed(t *testing.T) {
	n := startLimited(t, func(c *node.Config) { c.HandshakeTimeout, c.IdleTimeout = 200*time.Millisecond, 300*time.Millisecond })
	silent, err := net.Dial("tcp", n.GRPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	if !closedWithin(silent, 3*time.Second) {
		t.Fatal("a connection that never handshakes was not closed")
	}
	t.Logf("a silent connection closed after %s", time.Since(start).Round(time.Millisecond))
	cc := dialFrom(t, n, "127.0.0.3")
	if _, err := pb.NewCacheClient(cc).Set(context.Background(), &pb.SetRequest{Namespace: "cache", Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if s := cc.GetState(); s != connectivity.Idle {
			return fmt.Errorf("client connection %v after the idle timeout, want IDLE (closed by the node)", s)
		}
		return nil
	})
	clustertest.Eventually(t, 5*time.Second, func() error {
		if st := n.ConnStats(); st.Clients != 0 {
			return fmt.Errorf("%d client connections still open", st.Clients)
		}
		return nil
	})
}
