package auth_test

import (
	"bytes"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/config"
)

// FuzzParseTokens: any input parses or fails with ErrBadTokensFile, never
// panics, never quotes what it rejects, and every line it accepts resolves.
func FuzzParseTokens(f *testing.F) {
	h := auth.HashToken("t")
	for _, seed := range []string{
		"", "\n\n", "# only a comment\n", "web " + h + "\n", "web " + h + " # c\r\n",
		"web " + h + "\nweb " + h + "\n", "a b c\n", "web zz\n", "\x00 " + h,
		"web " + strings.ToUpper(h) + "\n", "ops\t" + h + "\t#\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		table, err := auth.ParseTokens(data)
		if err != nil {
			if !errors.Is(err, auth.ErrBadTokensFile) {
				t.Fatalf("error %v does not wrap ErrBadTokensFile", err)
			}
			if table != nil {
				t.Fatal("a table returned with an error")
			}
			for _, field := range bytes.Fields(data) {
				if len(field) >= 8 && strings.Contains(err.Error(), string(field)) {
					t.Fatalf("error %q quotes input %q", err, field)
				}
			}
			return
		}
		if table.Len() > strings.Count(string(data), "\n")+1 {
			t.Fatalf("%d tokens from %d lines", table.Len(), strings.Count(string(data), "\n")+1)
		}
	})
}

// FuzzAuthConfig: any document either fails config validation or compiles
// into an Authorizer without error, and then the policy's invariants hold
// for any principal, role and namespace: a token never gets the peer role, a
// name with no entry may do no more than an anonymous caller, and an
// anonymous denial is Unauthenticated.
func FuzzAuthConfig(f *testing.F) {
	for _, seed := range []string{
		issueExample,
		"auth:\n",
		"namespaces: {users: {}}\nauth: {principals: {\"*\": {namespaces: {\"*\": [read, write]}, admin: true, peer: true}}}\n",
		"namespaces: {a: {}}\nauth: {principals: {\"n[0-9]\": {peer: true, rate: 0.5}}, anonymous: {namespaces: {a: [read]}, rate: 3, burst: 1}}\n",
		"auth: {principals: {\"[\": {}}}\n",
		"auth: {anonymous: {admin: true}}\n",
		"auth: {principals: {web: {rate: 1e308, burst: 2147483647}}}\n",
	} {
		f.Add(seed, "web", "users", uint8(0))
	}
	f.Fuzz(func(t *testing.T, doc, name, ns string, roleBits uint8) {
		file, err := config.Parse([]byte(doc), "/data")
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Parse error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if file.Auth != nil {
			file.Auth.TokensFile = "" // files are not the subject here
		}
		z, err := auth.New(file.Auth, auth.Options{})
		if err != nil {
			t.Fatalf("a validated config does not compile: %v\n%s", err, doc)
		}
		if file.Auth == nil {
			if z.Enabled() || z.Authorize(auth.Principal{}, auth.RoleAdmin, "") != nil {
				t.Fatal("no auth section, yet authorization is on")
			}
			return
		}
		role := auth.Role(1) << (roleBits % 4)
		anon := auth.Principal{}
		anonErr := z.Authorize(anon, role, ns)
		if anonErr != nil && !errors.Is(anonErr, auth.ErrUnauthenticated) {
			t.Fatalf("anonymous denial %v is not Unauthenticated", anonErr)
		}
		if err := z.Authorize(auth.Principal{Name: name, Kind: auth.Token}, auth.RolePeer, ""); err == nil {
			t.Fatalf("token principal %q got the peer role", name)
		}
		_, exact := file.Auth.Principals[name]
		matched := exact
		for pattern := range file.Auth.Principals {
			if ok, _ := pathMatch(pattern, name); ok {
				matched = true
			}
		}
		p := auth.Principal{Name: name, Kind: auth.Certificate}
		if err := z.Authorize(p, role, ns); !matched && (err == nil) != (anonErr == nil) {
			t.Fatalf("%q matches no entry but Authorize = %v while anonymous gets %v", name, err, anonErr)
		}
		z.Allow(p)
		z.Allow(anon)
	})
}

func pathMatch(pattern, name string) (bool, error) { return path.Match(pattern, name) }
