package ctl

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/clustertest"
	ringnode "github.com/ringcache/ringcache/pkg/node"
)

// A --token sent to a node that checks none (its config has no auth
// section) gets a warning, once: an operator must not take such a
// cluster for a protected one. A node that checks the token, and a call
// without one, get none.
func TestToken_ANodeThatChecksNoTokenIsNamed(t *testing.T) {
	const warning = "checks no token (its config has no auth section): --token protects nothing there"
	open := clustertest.Start(t, 1, clustertest.Options{LogLevel: slog.LevelInfo}).Node(0).GRPCAddr()
	_, stderr, err := runCLI(t, "", "--addr", open, "--token", "some-token", "stats")
	if err != nil {
		t.Fatalf("stats with a token on a node without auth: %v", err)
	}
	if n := strings.Count(stderr, warning); n != 1 {
		t.Fatalf("stats (one call per member) printed the warning %d times, want once:\n%s", n, stderr)
	}
	if !strings.Contains(stderr, open) {
		t.Errorf("the warning does not name the node %s: %q", open, stderr)
	}
	if _, stderr, err := runCLI(t, "", "--addr", open, "members"); err != nil || strings.Contains(stderr, "warning") {
		t.Fatalf("members without a token: %v, stderr %q; want no warning", err, stderr)
	}

	dir := t.TempDir()
	token := strings.TrimSpace(mustRun(t, "certs", "token", "ops", "--dir", dir))
	guarded := clustertest.Start(t, 1, clustertest.Options{LogLevel: slog.LevelInfo, Configure: func(_ int, cfg *ringnode.Config) {
		cfg.Auth = &ringnode.AuthConfig{TokensFile: filepath.Join(dir, "tokens"), Principals: map[string]ringnode.Grant{"ops": {Admin: true}}}
	}}).Node(0).GRPCAddr()
	if _, stderr, err := runCLI(t, "", "--addr", guarded, "--token", token, "stats"); err != nil || strings.Contains(stderr, "warning") {
		t.Fatalf("stats with a valid token on a node with auth: %v, stderr %q; want no warning", err, stderr)
	}
}
