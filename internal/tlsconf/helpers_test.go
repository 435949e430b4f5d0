package tlsconf_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/certs"
	"github.com/ringcache/ringcache/internal/tlsconf"
)

// pki is a directory of PEM files signed by one CA, as `ringcachectl certs`
// writes them.
type pki struct {
	dir string
	ca  *certs.CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, p, err := certs.NewCA("", 0)
	if err != nil {
		t.Fatal(err)
	}
	k := &pki{dir: t.TempDir(), ca: ca}
	writeFile(t, k.path("ca.crt"), p.CertPEM)
	return k
}

func (k *pki) path(name string) string { return filepath.Join(k.dir, name) }

// node writes node.NAME.crt/key for hosts and returns the certificate.
func (k *pki) node(t *testing.T, name string, hosts ...string) *x509.Certificate {
	t.Helper()
	p, err := k.ca.Node(name, hosts, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, k.path("node."+name+".crt"), p.CertPEM)
	writeFile(t, k.path("node."+name+".key"), p.KeyPEM)
	return p.Cert
}

func (k *pki) client(t *testing.T, principal string) {
	t.Helper()
	p, err := k.ca.Client(principal, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, k.path("client."+principal+".crt"), p.CertPEM)
	writeFile(t, k.path("client."+principal+".key"), p.KeyPEM)
}

func (k *pki) nodeFiles(name string) tlsconf.Files {
	return tlsconf.Files{Cert: k.path("node." + name + ".crt"), Key: k.path("node." + name + ".key"), CA: k.path("ca.crt")}
}

func (k *pki) clientFiles(principal string) tlsconf.Files {
	return tlsconf.Files{Cert: k.path("client." + principal + ".crt"), Key: k.path("client." + principal + ".key"), CA: k.path("ca.crt")}
}

// writeFile rewrites path in place (truncate, then write), so a reader may
// see it empty or half written: what a careless rotation does.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, f tlsconf.Files, interval time.Duration) *tlsconf.Source {
	t.Helper()
	s, err := tlsconf.Load(f, tlsconf.Options{Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serve runs a TLS echo-of-identity server: after each handshake it writes
// the common name of the client certificate ("-" without one) and closes.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				cn := "-"
				if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
					cn = pc[0].Subject.CommonName
				}
				_, _ = tc.Write([]byte(cn + "\n"))
			})
		}
	})
	return lis.Addr().String()
}

// dial makes one connection and returns the server's certificate and the
// identity the server saw; a handshake the server refused is an error here,
// as the client learns of it on its first read.
func dial(addr string, cfg *tls.Config) (server *x509.Certificate, seenAs string, err error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return nil, "", err
	}
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], strings.TrimSuffix(line, "\n"), nil
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
