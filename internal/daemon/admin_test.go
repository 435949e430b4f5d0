package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/telemetry/telemetrytest"
)

// syncBuffer is a log sink safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestRun_ServesAdminEndpoints(t *testing.T) {
	admin := freeAddr(t)
	f := Flags{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", DataDir: t.TempDir(),
		MaxMemory: "16MiB", GossipPreset: "local", LogLevel: "info", LogFormat: "text",
		ShutdownTimeout: 5 * time.Second, FlushTimeout: time.Second, BootstrapTimeout: time.Second,
		AdminAddr: admin, AdminAddrSet: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, func() {}, f, &logs) }()

	base := "http://" + admin
	get := func(path string) (int, string, error) {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := get("/readyz")
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 10 s (last %d, %v)\n%s", code, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body, err := get("/healthz"); err != nil || code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q %v", code, body, err)
	}
	fams, err := telemetrytest.ScrapeURL(http.DefaultClient, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fams.Sum("ringcache_gets_total", "namespace", "default"); !ok {
		t.Errorf("no ringcache_gets_total{namespace=\"default\"}; families %v", fams.Names())
	}
	if got, _ := fams.Sum("ringcache_members", "state", "alive"); got != 1 {
		t.Errorf("ringcache_members{state=alive} = %v, want 1", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after the stop")
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Error("the admin endpoints still answer after Run returned")
	}
}

func TestStartAdmin_TakenAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := http.NotFoundHandler()

	if _, err := startAdmin(Flags{AdminAddr: taken, AdminAddrSet: true}, h, log); err == nil {
		t.Error("an explicit --admin-addr that is taken must fail the start")
	}
	a, err := startAdmin(Flags{AdminAddr: taken}, h, log)
	if err != nil || a != nil {
		t.Errorf("a taken default address: server %v, err %v; want neither", a, err)
	}
	if !strings.Contains(logs.String(), "set --admin-addr") {
		t.Errorf("no warning logged for the taken default address:\n%s", logs.String())
	}
	if a, err := startAdmin(Flags{}, h, log); a != nil || err != nil {
		t.Errorf("an empty address: server %v, err %v; want neither", a, err)
	}
}
