package certs_test

import (
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/certs"
)

func newCA(t *testing.T) *certs.CA {
	t.Helper()
	ca, _, err := certs.NewCA("", 0)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func verify(t *testing.T, ca *certs.CA, c *x509.Certificate, usage x509.ExtKeyUsage, host string) error {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestNewCA_IsASelfSignedCA(t *testing.T) {
	ca, p, err := certs.NewCA("", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 || !c.MaxPathLenZero {
		t.Errorf("CA: IsCA=%v KeyUsage=%v MaxPathLenZero=%v", c.IsCA, c.KeyUsage, c.MaxPathLenZero)
	}
	if c.Subject.CommonName != certs.DefaultCACommonName {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if life := c.NotAfter.Sub(time.Now()); life < certs.DefaultCAValidity-time.Minute || life > certs.DefaultCAValidity {
		t.Errorf("CA valid for %s more, want about %s", life, certs.DefaultCAValidity)
	}
	if len(p.CertPEM) == 0 || len(p.KeyPEM) == 0 {
		t.Error("NewCA returned no PEM")
	}
}

func TestNode_HasBothUsagesAndExactlyTheHostsGiven(t *testing.T) {
	ca := newCA(t)
	p, err := ca.Node("ringcache-0", []string{"10.0.0.5", "ringcache-0.ringcache", "*.ringcache.default.svc", "::1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Cert
	if c.Subject.CommonName != "ringcache-0" {
		t.Errorf("CN = %q, want ringcache-0", c.Subject.CommonName)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(c.ExtKeyUsage, want) {
		t.Errorf("ExtKeyUsage = %v, want serverAuth and clientAuth", c.ExtKeyUsage)
	}
	if want := []string{"ringcache-0.ringcache", "*.ringcache.default.svc"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNSNames = %v, want %v (no localhost unless given)", c.DNSNames, want)
	}
	if len(c.IPAddresses) != 2 || !c.IPAddresses[0].Equal(net.ParseIP("10.0.0.5")) || !c.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IPAddresses = %v, want [10.0.0.5 ::1]", c.IPAddresses)
	}
	for _, host := range []string{"10.0.0.5", "ringcache-0.ringcache", "x.ringcache.default.svc", "::1"} {
		if err := verify(t, ca, c, x509.ExtKeyUsageServerAuth, host); err != nil {
			t.Errorf("verify as server %s: %v", host, err)
		}
	}
	if err := verify(t, ca, c, x509.ExtKeyUsageServerAuth, "127.0.0.1"); err == nil {
		t.Error("node certificate verified for 127.0.0.1, which was not given")
	}
	if err := verify(t, ca, c, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("verify as client: %v", err)
	}
	if c.NotAfter.After(ca.Cert.NotAfter) {
		t.Error("leaf outlives its CA")
	}
}

func TestClient_IsClientAuthOnly(t *testing.T) {
	ca := newCA(t)
	p, err := ca.Client("web", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Cert
	if c.Subject.CommonName != "web" || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("client cert CN=%q EKU=%v, want web and clientAuth only", c.Subject.CommonName, c.ExtKeyUsage)
	}
	if err := verify(t, ca, c, x509.ExtKeyUsageServerAuth, ""); err == nil {
		t.Error("client certificate verified as a server certificate")
	}
	if life := c.NotAfter.Sub(time.Now()); life > 48*time.Hour || life < 47*time.Hour {
		t.Errorf("client cert valid for %s more, want 48h", life)
	}
}

func TestIssue_RejectsBadNamesAndHosts(t *testing.T) {
	ca := newCA(t)
	for _, tc := range []struct {
		name  string
		hosts []string
	}{
		{"", []string{"a"}},
		{"../etc", []string{"a"}},
		{"ringcache-*", []string{"a"}},
		{"n1", nil},
		{"n1", []string{"10.0.0.5:7101"}},
		{"n1", []string{"bad_host"}},
		{"n1", []string{"*"}},
	} {
		if _, err := ca.Node(tc.name, tc.hosts, 0); !errors.Is(err, certs.ErrInvalidName) {
			t.Errorf("Node(%q, %q) = %v, want ErrInvalidName", tc.name, tc.hosts, err)
		}
	}
	if _, err := ca.Client("a/b", 0); !errors.Is(err, certs.ErrInvalidName) {
		t.Errorf("Client(a/b) = %v, want ErrInvalidName", err)
	}
}

func TestWritePair_ModesOverwriteAndLoadCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ca, p, err := certs.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := certs.WritePair(crt, key, p, false); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{crt: 0o644, key: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode = %v, want %v", path, fi.Mode(), want)
		}
	}
	if err := certs.WritePair(crt, key, p, false); !errors.Is(err, certs.ErrExists) {
		t.Errorf("second WritePair = %v, want ErrExists", err)
	}
	if err := certs.WritePair(crt, key, p, true); err != nil {
		t.Errorf("WritePair with overwrite: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want ca.crt and ca.key only (no temporary files left)", len(entries))
	}

	loaded, err := certs.LoadCA(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) {
		t.Error("LoadCA returned another certificate")
	}
	leaf, err := loaded.Client("ops", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ca, leaf.Cert, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("certificate signed by the loaded CA does not verify: %v", err)
	}

	// A leaf certificate cannot be loaded as a CA.
	lc, lk := filepath.Join(dir, "ops.crt"), filepath.Join(dir, "ops.key")
	if err := certs.WritePair(lc, lk, leaf, false); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.LoadCA(lc, lk); !errors.Is(err, certs.ErrNotCA) {
		t.Errorf("LoadCA(leaf) = %v, want ErrNotCA", err)
	}
	if _, err := certs.LoadCA(crt, lk); err == nil {
		t.Error("LoadCA with a key that does not match succeeded")
	}
}
