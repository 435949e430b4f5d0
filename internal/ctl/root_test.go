package ctl

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/ringcache/ringcache/internal/certs"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func TestError_GRPCStatusIsShownAsCodeAndMessage(t *testing.T) {
	addr := startNode(t, newFakeNode("n1"))
	for _, args := range [][]string{
		{"get", "x", "k"}, {"get", "x", "k1", "k2"}, {"set", "x", "k", "v"}, {"del", "x", "k"}, {"locate", "x", "k"},
	} {
		_, _, err := runCLI(t, "", append([]string{"--addr", addr}, args...)...)
		if err == nil || err.Error() != `NOT_FOUND: namespace "x" is not configured` {
			t.Errorf("%v: err = %v, want NOT_FOUND: namespace \"x\" is not configured", args, err)
		}
	}
}

func TestError_UnimplementedServiceIsReachableError(t *testing.T) {
	lis := listen(t)
	srv := grpc.NewServer()
	ringcachev1.RegisterCacheServer(srv, newFakeNode("n1")) // no Admin service
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, _, err := runCLI(t, "", "--addr", lis.Addr().String(), "members")
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Code != codes.Unimplemented || rpcErr.Unreachable {
		t.Fatalf("err = %v, want a reachable UNIMPLEMENTED RPCError", err)
	}
	if !strings.HasPrefix(err.Error(), "UNIMPLEMENTED: ") || !strings.Contains(err.Error(), "ringcache.v1.Admin") {
		t.Errorf("err = %q, want UNIMPLEMENTED: ... ringcache.v1.Admin", err)
	}
}

func TestError_UnreachableAddrFailsFastWithHint(t *testing.T) {
	addr := deadAddr(t)
	start := time.Now()
	_, _, err := runCLI(t, "", "--addr", addr, "--timeout", "3s", "members")
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("members against a closed port succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"cannot reach ringcache node at " + addr, "check --addr", "UNAVAILABLE"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if elapsed > 3*time.Second+time.Second {
		t.Errorf("took %s, want within the 3s timeout", elapsed)
	}
}

func TestError_DeadlineOnSlowNodeNamesTimeout(t *testing.T) {
	addr := startNode(t, newFakeNode("n1"))
	_, _, err := runCLI(t, "", "--addr", addr, "--timeout", "200ms", "locate", "slow", "k")
	var rpcErr *RPCError
	if !errors.As(err, &rpcErr) || rpcErr.Unreachable {
		t.Fatalf("err = %v, want a reachable DEADLINE_EXCEEDED", err)
	}
	if want := "DEADLINE_EXCEEDED: no answer within 200ms (see --timeout)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestRoot_AddrDefaultsFromEnv(t *testing.T) {
	addr := startNode(t, membersNode())
	t.Setenv(AddrEnv, addr)
	if got := NewRootCommand().PersistentFlags().Lookup("addr").DefValue; got != addr {
		t.Errorf("default --addr = %q, want %q from %s", got, addr, AddrEnv)
	}
	if out := mustRun(t, "members"); !strings.Contains(out, "n1 (self)") {
		t.Errorf("members via %s:\n%s", AddrEnv, out)
	}
}

func TestRoot_DefaultAddrWithoutEnv(t *testing.T) {
	t.Setenv(AddrEnv, "")
	if got := NewRootCommand().PersistentFlags().Lookup("addr").DefValue; got != "127.0.0.1:7101" {
		t.Errorf("default --addr = %q, want 127.0.0.1:7101", got)
	}
}

func TestRoot_RejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml", "members"}, `unknown output format "yaml"`},
		{[]string{"--timeout", "0s", "members"}, "--timeout must be positive"},
		{[]string{"get", "users"}, "requires at least 2 arg(s)"},
	} {
		_, _, err := runCLI(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// A plaintext call to a node that serves TLS, or a TLS call to one that
// does not, fails with the transport's words; the error says which flags
// to check.
func TestError_ATLSMismatchNamesTheTLSFlags(t *testing.T) {
	serve := func(reply string) string {
		lis := listen(t)
		go func() {
			for {
				c, err := lis.Accept()
				if err != nil {
					return
				}
				if reply == "" { // read what the client sent first, as a TLS server reads a record
					_, _ = c.Read(make([]byte, 4096))
				}
				_, _ = io.WriteString(c, reply)
				c.Close()
			}
		}()
		t.Cleanup(func() { lis.Close() })
		return lis.Addr().String()
	}
	// A TLS server closes a connection that sends it plaintext HTTP/2.
	tlsNode := serve("")
	_, _, err := runCLI(t, "", "--addr", tlsNode, "--timeout", "3s", "members")
	if err == nil || !strings.Contains(err.Error(), "pass --tls-ca") {
		t.Errorf("plaintext against a node that hangs up: %v; want a hint to pass --tls-ca", err)
	}
	// A plaintext server answers a TLS hello with bytes that are no TLS.
	_, ca, err := certs.NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	plainNode := serve("HTTP/1.1 400 Bad Request\r\n\r\n")
	_, _, err = runCLI(t, "", "--addr", plainNode, "--timeout", "3s", "--tls-ca", caFile, "members")
	if err == nil || !strings.Contains(err.Error(), "drop --tls-ca") {
		t.Errorf("TLS against a plaintext node: %v; want a hint to drop the TLS flags", err)
	}
}
