package tlsconf_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// startGRPC serves the health service over TLS from cfg and records the
// common name of each caller's certificate.
func startGRPC(t *testing.T, creds credentials.TransportCredentials) (addr string, callers *sync.Map) {
	t.Helper()
	callers = &sync.Map{}
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
			if p, ok := peer.FromContext(ctx); ok {
				if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
					callers.Store(info.State.PeerCertificates[0].Subject.CommonName, true)
				}
			}
			return next(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), callers
}

func check(ctx context.Context, conn *grpc.ClientConn) (serial string, err error) {
	var p peer.Peer
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return "", err
	}
	return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber.String(), nil
}

func TestGRPC_PeerCallsOverMutualTLSAndSurviveRotation(t *testing.T) {
	k := newPKI(t)
	first := k.node(t, "n1", "127.0.0.1")
	k.node(t, "n2", "127.0.0.1")
	server := load(t, k.nodeFiles("n1"), 10*time.Millisecond)
	cfg, err := server.ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	addr, callers := startGRPC(t, credentials.NewTLS(cfg))
	peerSource := load(t, k.nodeFiles("n2"), 10*time.Millisecond)
	dialNew := func() *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(peerSource.ClientCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	long := dialNew()
	if serial, err := check(t.Context(), long); err != nil || serial != first.SerialNumber.String() {
		t.Fatalf("first call: serial %s, err %v", serial, err)
	}
	if _, ok := callers.Load("n2"); !ok {
		t.Error("the server did not see the caller's node certificate")
	}

	// Calls on the established connection go on while the server rotates.
	var failures atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := check(t.Context(), long); err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, &err)
			}
		}
	})
	fresh := k.node(t, "n1", "127.0.0.1")
	waitFor(t, "a new connection presenting the new serial", func() bool {
		serial, err := check(t.Context(), dialNew())
		return err == nil && serial == fresh.SerialNumber.String()
	})
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d calls on the established connection failed during rotation; first: %v", n, *firstErr.Load())
	}
}
