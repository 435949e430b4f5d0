package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/config"
)

// authExample is the auth section of issue 11, with the namespaces it names.
const authExample = `
namespaces:
  users: {audit: true}
  sessions: {sensitive: true}
auth:
  tokens_file: /etc/ringcache/tokens
  audit_key_file: /etc/ringcache/audit.key
  principals:
    web:    {namespaces: {users: [read], sessions: [read, write]}, rate: 5000, burst: 10000}
    ops:    {admin: true}
    "ringcache-*": {peer: true}
  anonymous: {namespaces: {}}
`

func TestParse_AuthSection(t *testing.T) {
	f, err := config.Parse([]byte(authExample), "/data")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := f.Auth
	if a == nil {
		t.Fatal("auth section parsed as absent")
	}
	if a.TokensFile != "/etc/ringcache/tokens" || a.AuditKeyFile != "/etc/ringcache/audit.key" {
		t.Errorf("tokens_file %q, audit_key_file %q", a.TokensFile, a.AuditKeyFile)
	}
	web := a.Principals["web"]
	if !slices.Equal(web.Namespaces["sessions"], []string{"read", "write"}) || web.Rate != 5000 || web.Burst != 10000 || web.Admin || web.Peer {
		t.Errorf("web = %+v", web)
	}
	if !a.Principals["ops"].Admin || !a.Principals["ringcache-*"].Peer {
		t.Errorf("ops %+v, ringcache-* %+v", a.Principals["ops"], a.Principals["ringcache-*"])
	}
	if len(a.Anonymous.Namespaces) != 0 {
		t.Errorf("anonymous = %+v, want nothing", a.Anonymous)
	}
	if !f.Namespaces["users"].Audit || f.Namespaces["users"].Sensitive || !f.Namespaces["sessions"].Sensitive {
		t.Errorf("users %+v, sessions %+v: want users audited, sessions sensitive", f.Namespaces["users"], f.Namespaces["sessions"])
	}
}

func TestParse_AuthPresenceTurnsAuthorizationOn(t *testing.T) {
	for doc, wantOn := range map[string]bool{
		"namespaces: {users: {}}\n": false,
		"auth:\n":                   true, // nothing under it: on, nobody allowed
		"auth: {}\n":                true,
		"auth:\n#  principals: {ops: {admin: true}}\n":     true,
		"namespaces: {users: {}}\nauth: {anonymous: {}}\n": true,
	} {
		f, err := config.Parse([]byte(doc), "/data")
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if on := f.Auth != nil; on != wantOn {
			t.Errorf("%q: auth on = %v, want %v", doc, on, wantOn)
		}
	}
}

func TestParse_AuthErrorsNameTheField(t *testing.T) {
	const ns = "namespaces: {users: {}, sessions: {}}\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"unknown namespaces, all named", ns + "auth: {principals: {web: {namespaces: {user: [read], sesions: [read], users: [read]}}}}\n",
			[]string{"auth.principals.web.namespaces", `"sesions"`, `"user"`, "[sessions users]"}},
		{"unknown namespace for anonymous", ns + "auth: {anonymous: {namespaces: {x: [read]}}}\n",
			[]string{"auth.anonymous.namespaces", `"x"`}},
		{"admin as a namespace role", ns + "auth: {principals: {ops: {namespaces: {users: [admin]}}}}\n",
			[]string{"auth.principals.ops.namespaces.users", `"admin"`, "admin: true"}},
		{"bad glob", ns + "auth: {principals: {\"web[\": {}}}\n",
			[]string{"auth.principals", `"web["`, "glob"}},
		{"anonymous admin", ns + "auth: {anonymous: {admin: true}}\n",
			[]string{"auth.anonymous", "authenticated"}},
		{"anonymous peer", ns + "auth: {anonymous: {peer: true}}\n",
			[]string{"auth.anonymous"}},
		{"negative rate", ns + "auth: {principals: {web: {rate: -1}}}\n",
			[]string{"auth.principals.web.rate"}},
		{"nan rate", ns + "auth: {principals: {web: {rate: .nan}}}\n",
			[]string{"auth.principals.web.rate"}},
		{"burst without rate", ns + "auth: {principals: {web: {burst: 10}}}\n",
			[]string{"auth.principals.web.burst", "needs a rate"}},
		{"negative burst", ns + "auth: {principals: {web: {rate: 1, burst: -1}}}\n",
			[]string{"auth.principals.web.burst"}},
		{"unknown key", ns + "auth:\n  principals:\n    web: {namspaces: {}}\n",
			[]string{"auth.principals.web.namspaces", "line 4", "unknown key"}},
		{"roles not a list", ns + "auth: {principals: {web: {namespaces: {users: read}}}}\n",
			[]string{"line 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.doc), "/data")
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParse_AllNamespacesIsAcceptedAsANamespaceName(t *testing.T) {
	f, err := config.Parse([]byte("auth: {principals: {reader: {namespaces: {\"*\": [read]}}}}\n"), "/data")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := f.Auth.Principals["reader"].Namespaces[config.AllNamespaces]; !slices.Equal(got, []string{"read"}) {
		t.Errorf(`reader["*"] = %v`, got)
	}
}
