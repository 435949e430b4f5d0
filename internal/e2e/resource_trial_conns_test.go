package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The connection trial of issue 13; resource_trial_test.go has the
// harness and says how to run it at scale.

// TestTrial_IdleConnectionsLeaveRoomForHealthAndPeers opens more idle TCP
// connections than the node has file descriptors. The node must keep
// answering /readyz (saying why it is not ready while it cannot accept),
// admit its peers' connections, refuse the rest at once rather than leave
// them hanging, and serve new clients again once the idle connections are
// gone.
func TestTrial_IdleConnectionsLeaveRoomForHealthAndPeers(t *testing.T) {
	nofile := trialInt(t, "RINGCACHE_TRIAL_NOFILE", 256)
	m := trialInt(t, "RINGCACHE_TRIAL_CONNS", 2*nofile)
	n := startTrialNode(t, nofile)
	raiseOpenFiles(t, uint64(m)+512) // the test holds every idle connection's other end

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	var d net.Dialer
	start := time.Now()
	dialFailed := 0
	for i := range m {
		if i%4000 == 0 { // a new source address now and then: binding a port gets slow as they fill
			d = net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(abuserIP())}, Timeout: 2 * time.Second}
		}
		c, err := d.Dial("tcp", n.grpcAddr)
		if err != nil {
			dialFailed++
			continue
		}
		idle = append(idle, c)
	}
	t.Logf("%d idle connections attempted in %s (%d dials failed)", m, time.Since(start).Round(time.Millisecond), dialFailed)
	hc := http.Client{Timeout: 10 * time.Second}
	call := func(src string) (time.Duration, error) {
		cc := dialFrom(t, src, n.grpcAddr)
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := pb.NewCacheClient(cc).Set(ctx, &pb.SetRequest{Namespace: "default", Key: "k", Value: []byte("v")})
		return time.Since(t0), err
	}
	health := func(src string) (time.Duration, error) {
		cc := dialFrom(t, src, n.grpcAddr)
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return time.Since(t0), err
	}
	// Probe what users meet now and twice more, 2 s apart (the accept
	// loop of a node without bounds takes a moment to spend its
	// descriptors); every sample must pass.
	notReady := false
	sample := time.NewTicker(2 * time.Second)
	defer sample.Stop()
	for i := range 3 {
		if i > 0 {
			<-sample.C
		}
		t0 := time.Now()
		if resp, err := hc.Get("http://" + n.admin + "/readyz"); err != nil {
			t.Errorf("sample %d: /readyz: %v after %s", i, err, time.Since(t0).Round(time.Millisecond))
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			notReady = notReady || resp.StatusCode == http.StatusServiceUnavailable
			t.Logf("sample %d: /readyz in %s: %d %s", i, time.Since(t0).Round(time.Microsecond), resp.StatusCode, strings.TrimSpace(string(body)))
		}
		took, err := health("127.0.0.1")
		t.Logf("sample %d: gRPC health from a peer's address: %s, %v", i, took.Round(time.Microsecond), err)
		if err != nil {
			t.Errorf("sample %d: a peer's health check failed while idle connections were held: %v", i, err)
		}
		took, err = call("127.0.0.1")
		t.Logf("sample %d: first Set of a new client on a peer's address: %s, %v", i, took.Round(time.Microsecond), err)
		if err != nil {
			t.Errorf("sample %d: a peer's call failed while idle connections were held: %v", i, err)
		}
		took, err = call("127.0.0.3")
		t.Logf("sample %d: first Set of a new client: %s, %v", i, took.Round(time.Microsecond), err)
		if err != nil && took > 2*time.Second {
			t.Errorf("sample %d: a new client waited %s to be refused", i, took)
		}
	}
	// Connections the node refused see EOF at once; count those still open.
	open := 0
	deadline := time.Now().Add(200 * time.Millisecond)
	for _, c := range idle {
		c.SetReadDeadline(deadline)
		var ne net.Error
		if n, err := c.Read(make([]byte, 64)); n > 0 || errors.As(err, &ne) && ne.Timeout() {
			open++ // the node's HTTP/2 settings, or nothing yet: not closed
		}
	}
	t.Logf("%d of them still open after the samples", open)
	if open >= nofile/2 && !notReady {
		t.Errorf("/readyz never said 503 while %d connections were held by idle clients", open)
	}
	refused := n.metric(t, "ringcache_connections_refused_total")
	t.Logf("connections refused: %v, accept errors: %v; node RSS %.0f MiB, goroutines %.0f", refused, n.metric(t, "ringcache_accept_errors_total"), n.rssMiB(t), n.metric(t, "go_goroutines"))
	if open < m && refused <= 0 {
		t.Errorf("%d of %d connections closed, yet ringcache_connections_refused_total = %v", m-open, m, refused)
	}

	// The idle connections never handshake: the node closes them, and a
	// new client gets in.
	recovered := time.Now()
	eventually(t, 60*time.Second, "a new client served again", func() error {
		_, err := call("127.0.0.3")
		return err
	})
	t.Logf("a new client was served again %s later", time.Since(recovered).Round(time.Millisecond))
	eventually(t, 30*time.Second, "/readyz 200 again", func() error {
		resp, err := hc.Get("http://" + n.admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// raiseOpenFiles raises the test process's open-file limit to n if it is
// lower (as root, the hard limit too), restoring it at cleanup.
func raiseOpenFiles(t *testing.T, n uint64) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if old.Cur >= n {
		return
	}
	r := syscall.Rlimit{Cur: n, Max: max(n, old.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("raise the open-file limit to %d for the idle connections: %v (run as root, or with ulimit -n %d)", n, err, n)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}
