package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/gossipkey"
	"github.com/ringcache/ringcache/pkg/node"
)

// fakeReloader records what a SIGHUP asked of the node.
type fakeReloader struct {
	keys     [][]byte
	auth     []*node.AuthConfig
	tlsErr   error
	tlsCalls int
	reopens  int
	redirect []bool
}

func (f *fakeReloader) RotateGossipKeys(k [][]byte) error   { f.keys = k; return nil }
func (f *fakeReloader) ReloadAuth(a *node.AuthConfig) error { f.auth = append(f.auth, a); return nil }
func (f *fakeReloader) ReloadTLS() error                    { f.tlsCalls++; return f.tlsErr }
func (f *fakeReloader) ReopenAuditLog() error               { f.reopens++; return nil }
func (f *fakeReloader) ReloadSealKeys([][]byte) error       { return nil }
func (f *fakeReloader) ReloadRESPRedirect(all bool)         { f.redirect = append(f.redirect, all) }

const reloadConfig = `
namespaces:
  users: {}
  sessions: {}
auth:
  principals:
    web: {namespaces: {users: [read]}}
`

func TestReload_AppliesTheAuthSectionAndSaysWhatNeedsARestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ringcache.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfig)
	started, err := config.LoadFile(path, dir)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "gossip.keys")
	if err := gossipkey.Write(keyFile, [][]byte{[]byte("0123456789abcdef")}, ""); err != nil {
		t.Fatal(err)
	}
	f := Flags{ConfigPath: path, DataDir: dir, GossipKeyFile: keyFile,
		Security: SecurityFlags{TLSCert: "node.crt", AuditLog: "audit.log"}}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	n := &fakeReloader{}

	// web may now write users, ops administers: applied, nothing else changed.
	write(strings.Replace(reloadConfig, "users: [read]}}", "users: [read, write]}}\n    ops: {admin: true}", 1))
	reload(log, f, started, n)
	if len(n.auth) != 1 || len(n.auth[0].Principals) != 2 || len(n.auth[0].Principals["web"].Namespaces["users"]) != 2 || !n.auth[0].Principals["ops"].Admin {
		t.Fatalf("auth applied: %+v", n.auth)
	}
	if len(n.keys) != 1 || n.tlsCalls != 1 || n.reopens != 1 {
		t.Fatalf("gossip keys %d, TLS reloads %d, audit reopens %d; want 1 each", len(n.keys), n.tlsCalls, n.reopens)
	}
	for _, want := range []string{"SIGHUP: gossip keys reloaded", "SIGHUP: auth section reloaded", "SIGHUP: TLS files reloaded", "SIGHUP: audit log reopened"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), "take effect on restart") {
		t.Errorf("a change to the auth section alone is reported as needing a restart:\n%s", logs.String())
	}

	// A new namespace needs a restart, and is logged as such; the auth
	// section still applies.
	logs.Reset()
	write(strings.Replace(reloadConfig, "  sessions: {}\n", "  sessions: {}\n  orders: {}\n", 1))
	reload(log, f, started, n)
	if len(n.auth) != 2 || !strings.Contains(logs.String(), "take effect on restart") || !strings.Contains(logs.String(), "changed=[namespaces]") {
		t.Fatalf("a new namespace: %d auth reloads; log:\n%s", len(n.auth), logs.String())
	}

	// resp.redirect applies (to connections accepted from now on);
	// resp.default_namespace needs a restart.
	logs.Reset()
	write(reloadConfig + "resp: {redirect: always}\n")
	reload(log, f, started, n)
	if !n.redirect[len(n.redirect)-1] || !strings.Contains(logs.String(), "SIGHUP: resp.redirect reloaded") || strings.Contains(logs.String(), "take effect on restart") {
		t.Fatalf("resp.redirect: always: redirect applied %v; log:\n%s", n.redirect, logs.String())
	}
	logs.Reset()
	write(reloadConfig + "resp: {default_namespace: sessions}\n")
	reload(log, f, started, n)
	if n.redirect[len(n.redirect)-1] || !strings.Contains(logs.String(), "changed=[resp.default_namespace]") {
		t.Fatalf("resp.default_namespace: redirect applied %v; log:\n%s", n.redirect, logs.String())
	}

	// A file that does not load changes nothing; a TLS error is logged and
	// the audit log is still reopened.
	logs.Reset()
	write(reloadConfig + "    bad: {namespaces: {nope: [read]}}\n")
	n.tlsErr = errors.New("certificate and key do not match")
	reload(log, f, started, n)
	if len(n.auth) != 4 || len(n.redirect) != 4 {
		t.Fatalf("a bad config was applied: %+v", n.auth[len(n.auth)-1])
	}
	for _, want := range []string{"auth section not reloaded", `unknown namespaces [\"nope\"]`, "TLS files not reloaded", "SIGHUP: audit log reopened"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestReload_WithoutFilesTouchesOnlyTLSAndAudit(t *testing.T) {
	var logs bytes.Buffer
	n := &fakeReloader{}
	reload(slog.New(slog.NewTextHandler(&logs, nil)), Flags{}, config.Default(t.TempDir()), n)
	if n.keys != nil || n.auth != nil || n.tlsCalls != 1 || n.reopens != 1 {
		t.Fatalf("%+v", n)
	}
	if logs.Len() != 0 {
		t.Fatalf("a node without files logged on SIGHUP:\n%s", logs.String())
	}
}
