package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/auth"
)

func TestIdentify_CertificatesTokensAndAnonymous(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	for _, tc := range []struct {
		name string
		c    auth.Credentials
		want auth.Principal
	}{
		{"nothing", auth.Credentials{}, auth.Principal{}},
		{"client certificate", auth.Credentials{Certificate: clientCert(t, "web")}, auth.Principal{Name: "web", Kind: auth.Certificate}},
		{"node certificate", auth.Credentials{Certificate: nodeCert(t, "ringcache-0")}, auth.Principal{Name: "ringcache-0", Kind: auth.Certificate, Node: true}},
		{"URI SAN over common name", auth.Credentials{Certificate: withURI(clientCert(t, "web"), "spiffe://prod/web")},
			auth.Principal{Name: "spiffe://prod/web", Kind: auth.Certificate}},
		{"token", auth.Credentials{Token: webToken}, auth.Principal{Name: "web", Kind: auth.Token}},
		{"token naming a node is not a node", auth.Credentials{Token: nodeToken}, auth.Principal{Name: "ringcache-0", Kind: auth.Token}},
		{"token wins over certificate", auth.Credentials{Token: opsToken, Certificate: clientCert(t, "web")}, auth.Principal{Name: "ops", Kind: auth.Token}},
	} {
		got, err := z.Identify(tc.c)
		if err != nil || got != tc.want {
			t.Errorf("%s: Identify = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestIdentify_BadTokenIsUnauthenticatedNotAnonymous(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	for _, c := range []auth.Credentials{
		{Token: "not-a-token"},
		{Token: "not-a-token", Certificate: clientCert(t, "web")},
		{Token: auth.HashToken(webToken)}, // the hash is not the token
	} {
		_, err := z.Identify(c)
		if !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("Identify(bad token) = %v, want ErrUnauthenticated", err)
		}
		if err != nil && strings.Contains(err.Error(), c.Token) {
			t.Errorf("error %q quotes the token", err)
		}
	}
	noName := clientCert(t, "x")
	cp := *noName
	cp.Subject.CommonName = ""
	if _, err := z.Identify(auth.Credentials{Certificate: &cp}); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("certificate without a name: %v, want ErrUnauthenticated", err)
	}
}

func TestIdentify_TokenWithoutTokensFile(t *testing.T) {
	z := newAuthorizer(t, "auth: {principals: {web: {}}}\n", nil)
	if _, err := z.Identify(auth.Credentials{Token: webToken}); !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), "auth.tokens_file") {
		t.Errorf("token with no tokens file: %v, want ErrUnauthenticated naming auth.tokens_file", err)
	}
	open, err := auth.New(nil, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := open.Identify(auth.Credentials{Token: "anything"}); err != nil || p.Kind != auth.Anonymous {
		t.Errorf("without an auth section a token caller = %+v, %v; want anonymous (tokens are not checked)", p, err)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
		ok     bool
	}{
		{nil, "", true},
		{[]string{"Bearer abc"}, "abc", true},
		{[]string{"bearer abc"}, "abc", true},
		{[]string{"Bearer  abc "}, "abc", true},
		{[]string{"Basic abc"}, "", false},
		{[]string{"Bearer"}, "", false},
		{[]string{"Bearer "}, "", false},
		{[]string{"Bearer a b"}, "", false},
		{[]string{"abc"}, "", false},
		{[]string{"Bearer a", "Bearer b"}, "", false},
	} {
		got, err := auth.BearerToken(tc.values)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", tc.values, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("BearerToken(%q) = %q, %v; want ErrUnauthenticated", tc.values, got, err)
		}
		if !tc.ok && err != nil && len(tc.values) == 1 && strings.Contains(err.Error(), "abc") {
			t.Errorf("error %q quotes the credential", err)
		}
	}
}
