package ctl

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/certs"
	"github.com/ringcache/ringcache/internal/tlsconf"
)

func TestCerts_OneLinePerFileMakesAWorkingMutualTLSSetup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	out := mustRun(t, "certs", "ca", "--dir", dir)
	if !strings.Contains(out, "ca.crt") || !strings.Contains(out, "ringcache CA") {
		t.Errorf("certs ca printed %q", out)
	}
	mustRun(t, "certs", "node", "n1", "--dir", dir, "--host", "127.0.0.1,n1.ringcache", "--days", "30")
	out = mustRun(t, "certs", "client", "web", "--dir", dir, "-o", "json")
	var v certsJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	if v.Subject != "web" || v.Cert != filepath.Join(dir, "client.web.crt") || v.Serial == "" {
		t.Errorf("client json = %+v", v)
	}
	for name, mode := range map[string]os.FileMode{
		"ca.crt": 0o644, "ca.key": 0o600, "node.n1.crt": 0o644, "node.n1.key": 0o600,
		"client.web.crt": 0o644, "client.web.key": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s mode %v, want %v", name, fi.Mode(), mode)
		}
	}

	// The files work as they are: a node serving strict mutual TLS, a client.
	node, err := tlsconf.Load(tlsconf.Files{
		Cert: filepath.Join(dir, "node.n1.crt"), Key: filepath.Join(dir, "node.n1.key"), CA: filepath.Join(dir, "ca.crt"),
	}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := node.ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if tc := c.(*tls.Conn); tc.Handshake() == nil {
			_, _ = tc.Write([]byte(tc.ConnectionState().PeerCertificates[0].Subject.CommonName + "\n"))
		}
	}()
	client, err := tlsconf.Load(tlsconf.Files{
		Cert: filepath.Join(dir, "client.web.crt"), Key: filepath.Join(dir, "client.web.key"), CA: filepath.Join(dir, "ca.crt"),
	}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", lis.Addr().String(), client.ClientConfig())
	if err != nil {
		t.Fatalf("handshake with the generated files: %v", err)
	}
	defer conn.Close()
	seenAs, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || seenAs != "web\n" {
		t.Errorf("node saw the client as %q (err %v), want web", seenAs, err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "n1" {
		t.Errorf("node presented %q, want n1", cn)
	}
}

func TestCerts_RefusesToOverwriteAndExplainsWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "node", "n1", "--dir", dir, "--host", "127.0.0.1"}, "certs ca --dir " + dir},
		{[]string{"certs", "node", "n1", "--dir", dir}, "--host is required"},
		{[]string{"certs", "ca", "--dir", dir, "--days", "-1"}, "--days must be positive"},
	} {
		if _, _, err := runCLI(t, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	mustRun(t, "certs", "ca", "--dir", dir)
	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	_, _, err := runCLI(t, "", "certs", "ca", "--dir", dir)
	if !errors.Is(err, certs.ErrExists) || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("second certs ca: %v, want ErrExists naming --overwrite", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); string(after) != string(before) {
		t.Error("a refused certs ca changed ca.key")
	}
	mustRun(t, "certs", "ca", "--dir", dir, "--overwrite")
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); string(after) == string(before) {
		t.Error("certs ca --overwrite kept the old key")
	}
	if _, _, err := runCLI(t, "", "certs", "client", "a/b", "--dir", dir); !errors.Is(err, certs.ErrInvalidName) {
		t.Errorf("client a/b: %v, want ErrInvalidName", err)
	}
	// --ca-cert and --ca-key name a CA elsewhere; the files go to --dir.
	other := t.TempDir()
	mustRun(t, "certs", "client", "ops", "--dir", other,
		"--ca-cert", filepath.Join(dir, "ca.crt"), "--ca-key", filepath.Join(dir, "ca.key"))
	if _, err := os.Stat(filepath.Join(other, "client.ops.key")); err != nil {
		t.Errorf("client.ops.key not written to --dir: %v", err)
	}
}

func TestCertsToken_PrintsATokenAndStoresOnlyItsHash(t *testing.T) {
	dir := t.TempDir()
	tok1 := strings.TrimSpace(mustRun(t, "certs", "token", "web", "--dir", dir))
	tok2 := strings.TrimSpace(mustRun(t, "certs", "token", "web", "--dir", dir))
	path := filepath.Join(dir, "tokens")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), tok1) || strings.Contains(string(data), tok2) {
		t.Fatalf("the tokens file holds a token:\n%s", data)
	}
	table, err := auth.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{tok1, tok2} {
		if name, ok := table.Lookup(tok); !ok || name != "web" {
			t.Errorf("token printed by certs token resolves to %q, %v; want web", name, ok)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", fi.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("broken line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "certs", "token", "ops", "--dir", dir); !errors.Is(err, auth.ErrBadTokensFile) {
		t.Errorf("appending to a broken tokens file: %v, want ErrBadTokensFile", err)
	}
}
