package tlsconf_test

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/tlsconf"
)

func TestMutualTLS_PeersDialEachOtherByIP(t *testing.T) {
	k := newPKI(t)
	n1 := k.node(t, "n1", "127.0.0.1")
	k.node(t, "n2", "127.0.0.1")
	srv, err := load(t, k.nodeFiles("n1"), 0).ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	server, seenAs, err := dial(addr, load(t, k.nodeFiles("n2"), 0).ClientConfig())
	if err != nil {
		t.Fatalf("n2 dialling n1: %v", err)
	}
	if server.SerialNumber.Cmp(n1.SerialNumber) != 0 || seenAs != "n2" {
		t.Errorf("server presented %s, saw the caller as %q; want n1's certificate and n2", server.Subject.CommonName, seenAs)
	}
}

func TestServer_StrictModeRefusesCallersWithoutAValidCertificate(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	srv, err := load(t, k.nodeFiles("n1"), 0).ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)

	caOnly := load(t, tlsconf.Files{CA: k.path("ca.crt")}, 0).ClientConfig()
	if _, _, err := dial(addr, caOnly); err == nil {
		t.Error("strict server accepted a caller without a certificate")
	}
	other := newPKI(t) // a client certificate from another CA
	other.client(t, "mallory")
	f := other.clientFiles("mallory")
	f.CA = k.path("ca.crt")
	if _, _, err := dial(addr, load(t, f, 0).ClientConfig()); err == nil {
		t.Error("strict server accepted a certificate signed by another CA")
	}
	k.client(t, "web")
	if _, seenAs, err := dial(addr, load(t, k.clientFiles("web"), 0).ClientConfig()); err != nil || seenAs != "web" {
		t.Errorf("client web: seen as %q, err %v", seenAs, err)
	}
}

func TestServer_OptionalClientCertificateLetsTokenCallersIn(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	srv, err := load(t, k.nodeFiles("n1"), 0).ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	if _, seenAs, err := dial(addr, load(t, tlsconf.Files{CA: k.path("ca.crt")}, 0).ClientConfig()); err != nil || seenAs != "-" {
		t.Errorf("caller without certificate: seen as %q, err %v; want admitted without identity", seenAs, err)
	}
	k.client(t, "web")
	if _, seenAs, err := dial(addr, load(t, k.clientFiles("web"), 0).ClientConfig()); err != nil || seenAs != "web" {
		t.Errorf("client web: seen as %q, err %v", seenAs, err)
	}
}

func TestServer_RefusesTLS12(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	srv, err := load(t, k.nodeFiles("n1"), 0).ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	old := &tls.Config{MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	if _, _, err := dial(addr, old); err == nil {
		t.Error("a TLS 1.2 client completed a handshake")
	}
}

func TestClient_VerifiesTheNameDialled(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "10.9.9.9", "n1.example") // not the address dialled
	srv, err := load(t, k.nodeFiles("n1"), 0).ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	client := load(t, tlsconf.Files{CA: k.path("ca.crt")}, 0)
	if _, _, err := dial(addr, client.ClientConfig()); err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("dialling 127.0.0.1 with a certificate for 10.9.9.9: err %v, want a name mismatch", err)
	}
	cfg := client.ClientConfig()
	cfg.ServerName = "n1.example"
	if _, _, err := dial(addr, cfg); err != nil {
		t.Errorf("with ServerName n1.example: %v", err)
	}
	cfg.ServerName = ""
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := tls.Client(conn, cfg).Handshake(); err == nil {
		t.Error("handshake with no server name to verify succeeded")
	}
}

func TestClient_WithoutCAUsesSystemRoots(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	k.client(t, "web")
	srv, err := load(t, k.nodeFiles("n1"), 0).ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	f := k.clientFiles("web")
	f.CA = ""
	if _, _, err := dial(addr, load(t, f, 0).ClientConfig()); err == nil {
		t.Error("a client without --tls-ca trusted a private CA")
	}
}

func TestLoad_RejectsBadFiles(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	k.node(t, "n2", "127.0.0.1")
	f := k.nodeFiles("n1")
	mismatched := tlsconf.Files{Cert: f.Cert, Key: k.nodeFiles("n2").Key}
	if _, err := tlsconf.Load(mismatched, tlsconf.Options{}); !errors.Is(err, tlsconf.ErrBadFiles) {
		t.Errorf("Load(mismatched pair) = %v, want ErrBadFiles", err)
	}
	if _, err := tlsconf.Load(tlsconf.Files{Cert: f.Cert}, tlsconf.Options{}); !errors.Is(err, tlsconf.ErrBadFiles) {
		t.Errorf("Load(cert without key) = %v, want ErrBadFiles", err)
	}
	if _, err := tlsconf.Load(tlsconf.Files{CA: f.Key}, tlsconf.Options{}); !errors.Is(err, tlsconf.ErrBadFiles) {
		t.Errorf("Load(CA file holding a key) = %v, want ErrBadFiles", err)
	}
	if _, err := tlsconf.Load(tlsconf.Files{CA: k.path("missing")}, tlsconf.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing CA) = %v, want ErrNotExist", err)
	}
	caOnly := load(t, tlsconf.Files{CA: f.CA}, 0)
	if _, err := caOnly.ServerConfig(false); !errors.Is(err, tlsconf.ErrNoCertificate) {
		t.Errorf("ServerConfig without certificate = %v, want ErrNoCertificate", err)
	}
	noCA := load(t, tlsconf.Files{Cert: f.Cert, Key: f.Key}, 0)
	if _, err := noCA.ServerConfig(true); !errors.Is(err, tlsconf.ErrNoClientCA) {
		t.Errorf("ServerConfig(require) without CA = %v, want ErrNoClientCA", err)
	}
}
