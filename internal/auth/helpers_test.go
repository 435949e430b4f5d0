package auth_test

import (
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/certs"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/testclock"
)

// issueExample is the auth section of issue 11 over two namespaces.
const issueExample = `
namespaces:
  users: {}
  sessions: {}
  public: {}
auth:
  tokens_file: TOKENS
  principals:
    web:    {namespaces: {users: [read], sessions: [read, write]}, rate: 5000, burst: 10000}
    ops:    {admin: true}
    "ringcache-*": {peer: true}
  anonymous: {namespaces: {}}
`

// Tokens of the tests; the tokens file holds their hashes.
const (
	webToken  = "web-token-0123456789"
	opsToken  = "ops-token-0123456789"
	nodeToken = "node-token-0123456789" // a token naming a node: never a peer
)

func writeTokens(t testing.TB, path string, lines map[string]string) {
	t.Helper()
	var b []byte
	b = append(b, "# principal sha256hex\n\n"...)
	for token, name := range lines {
		b = append(b, name+" "+auth.HashToken(token)+"  # a comment\n"...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// parse reads an auth config with its tokens file in a temporary directory.
func parse(t testing.TB, doc string) *config.File {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, tokens, map[string]string{webToken: "web", opsToken: "ops", nodeToken: "ringcache-0"})
	f, err := config.Parse([]byte(strings.ReplaceAll(doc, "TOKENS", tokens)), t.TempDir())
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return f
}

func newAuthorizer(t testing.TB, doc string, clock *testclock.Clock) *auth.Authorizer {
	t.Helper()
	o := auth.Options{}
	if clock != nil {
		o.Now = clock.Now
	}
	z, err := auth.New(parse(t, doc).Auth, o)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	return z
}

var testCA = func() *certs.CA {
	ca, _, err := certs.NewCA("", 0)
	if err != nil {
		panic(err)
	}
	return ca
}()

func nodeCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	p, err := testCA.Node(name, []string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p.Cert
}

func clientCert(t *testing.T, name string) *x509.Certificate {
	t.Helper()
	p, err := testCA.Client(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p.Cert
}

// withURI returns a copy of c with a URI SAN, as SPIFFE issuers write them.
func withURI(c *x509.Certificate, uri string) *x509.Certificate {
	cp := *c
	u, err := url.Parse(uri)
	if err != nil {
		panic(err)
	}
	cp.URIs = []*url.URL{u}
	return &cp
}
