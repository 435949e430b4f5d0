package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// sighup signals every node and waits until each has logged want n times.
func (sc *secureCluster) sighup(t *testing.T, want string, n int) {
	t.Helper()
	for _, p := range sc.nodes {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range sc.nodes {
		eventually(t, 10*time.Second, fmt.Sprintf("%s logs %q", p.name, want), func() error {
			if got := strings.Count(p.log(), want); got < n {
				return fmt.Errorf("logged %d times, want %d", got, n)
			}
			return nil
		})
	}
}

// TestSecure_SIGHUPReloadsTheAuthSectionAndReopensTheAuditLog changes the
// auth section of three running secure nodes' config and signals them:
// principal web may then write users, through every node, with no restart.
// The audit log, renamed as logrotate does, is reopened. A change outside
// the auth section is logged as needing a restart, and a config that does
// not load leaves the policy in force.
func TestSecure_SIGHUPReloadsTheAuthSectionAndReopensTheAuditLog(t *testing.T) {
	t.Parallel()
	sc := startSecureCluster(t, 3)
	ctx := context.Background()
	set := func(p *proc) error {
		_, err := pb.NewCacheClient(sc.dial(t, p.grpcAddr, &sc.web, "")).Set(ctx, &pb.SetRequest{Namespace: "users", Key: "1", Value: []byte("x-" + p.name)})
		return err
	}
	wantCode(t, "web sets users before the reload", set(sc.nodes[0]), codes.PermissionDenied)

	orig, err := os.ReadFile(sc.config)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(from, to string, in []byte) []byte {
		t.Helper()
		if !strings.Contains(string(in), from) {
			t.Fatalf("the test config has no %q", from)
		}
		return []byte(strings.Replace(string(in), from, to, 1))
	}
	next := edit("users: [read]", "users: [read, write]", orig)
	next = edit("ttl: 30m", "ttl: 40m", next) // sessions: needs a restart
	if err := os.WriteFile(sc.config, next, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range sc.nodes {
		a := filepath.Join(sc.dir, p.name+".audit")
		if err := os.Rename(a, a+".1"); err != nil {
			t.Fatal(err)
		}
	}
	sc.sighup(t, "SIGHUP: audit log reopened", 1)
	for _, p := range sc.nodes {
		log := p.log()
		for _, want := range []string{"SIGHUP: auth section reloaded", "SIGHUP: TLS files reloaded", "SIGHUP: gossip keys reloaded",
			"take effect on restart", "changed=[namespaces]"} {
			if !strings.Contains(log, want) {
				t.Fatalf("%s's log lacks %q:\n%s", p.name, want, log)
			}
		}
		if err := set(p); err != nil {
			t.Fatalf("web sets users through %s after the reload: %v", p.name, err)
		}
		var m membersJSON
		sc.ctlJSON(p.grpcAddr, &m, "members")
		b, err := os.ReadFile(filepath.Join(sc.dir, p.name+".audit"))
		if err != nil || !strings.Contains(string(b), `"method":"/ringcache.v1.Admin/Members"`) {
			t.Fatalf("%s's reopened audit log: %v\n%s", p.name, err, b)
		}
	}

	// A config that does not load changes nothing.
	if err := os.WriteFile(sc.config, edit("anonymous: {namespaces: {}}", "anonymous: {namespaces: {nope: [read]}}", next), 0o644); err != nil {
		t.Fatal(err)
	}
	sc.sighup(t, "SIGHUP: auth section not reloaded", 1)
	for _, p := range sc.nodes {
		if !strings.Contains(p.log(), `unknown namespaces [\"nope\"]`) {
			t.Fatalf("%s's log does not say why the config was refused:\n%s", p.name, p.log())
		}
		if err := set(p); err != nil {
			t.Fatalf("web sets users through %s after a refused reload: %v", p.name, err)
		}
	}
}
