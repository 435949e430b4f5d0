package auth_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/testclock"
)

func TestParseTokens(t *testing.T) {
	h1, h2 := auth.HashToken("one"), auth.HashToken("two")
	table, err := auth.ParseTokens([]byte("# tokens\n\n  web " + h1 + "\nweb\t" + strings.ToUpper(h2) + "   # rotated in 2026-11\n"))
	if err != nil {
		t.Fatal(err)
	}
	if table.Len() != 2 {
		t.Errorf("Len = %d, want 2", table.Len())
	}
	for _, tok := range []string{"one", "two"} {
		if name, ok := table.Lookup(tok); !ok || name != "web" {
			t.Errorf("Lookup(%q) = %q, %v; want web (a principal may have several tokens)", tok, name, ok)
		}
	}
	if _, ok := table.Lookup("three"); ok {
		t.Error("Lookup of an unknown token succeeded")
	}
	if _, ok := table.Lookup(h1); ok {
		t.Error("the stored hash works as a token")
	}
}

func TestParseTokens_ErrorsNameTheLineAndNeverTheSecret(t *testing.T) {
	const secret = "s3cr3t-token-pasted-by-mistake"
	h := auth.HashToken("x")
	for _, tc := range []struct {
		doc, want string
	}{
		{"web " + secret + "\n", "line 1: the second field is not a SHA-256 digest"},
		{"web\n", "line 1: want \"principal sha256hex\""},
		{"# c\nweb " + h + " extra\n", "line 2: want"},
		{"web " + h + "\nops " + h + "\n", "line 2: the same token digest as line 1"},
		{"web-* " + h + "\n", "line 1: the principal must be a plain name"},
		{"web " + strings.Repeat("g", 64) + "\n", "line 1: the second field"},
		{"web " + secret + strings.Repeat("0", 64-len(secret)) + "\n", "line 1"},
	} {
		_, err := auth.ParseTokens([]byte(tc.doc))
		if !errors.Is(err, auth.ErrBadTokensFile) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTokens(%q) = %v, want ErrBadTokensFile with %q", tc.doc, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error %q quotes a field of the file", err)
		}
	}
}

func TestTokens_ReloadedWhenTheFileChangesAndKeptWhenItBreaks(t *testing.T) {
	clock := testclock.New()
	path := filepath.Join(t.TempDir(), "tokens")
	writeTokens(t, path, map[string]string{"old": "web"})
	z, err := auth.New(&config.Auth{TokensFile: path}, auth.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	identify := func(token string) (string, error) {
		p, err := z.Identify(auth.Credentials{Token: token})
		return p.Name, err
	}
	if name, err := identify("old"); err != nil || name != "web" {
		t.Fatalf("old token: %q, %v", name, err)
	}
	writeTokens(t, path, map[string]string{"new": "web"})
	clock.Advance(time.Second)
	if name, err := identify("new"); err != nil || name != "web" {
		t.Errorf("new token after the file changed: %q, %v", name, err)
	}
	if _, err := identify("old"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("old token after it was removed: %v, want ErrUnauthenticated", err)
	}

	if err := os.WriteFile(path, []byte("web not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if name, err := identify("new"); err != nil || name != "web" {
		t.Errorf("after a broken rewrite: %q, %v; want the previous table kept", name, err)
	}
	if s := z.TokenStats(); s.LastError == nil || !errors.Is(s.LastError, auth.ErrBadTokensFile) || !strings.Contains(s.LastError.Error(), "line 1") {
		t.Errorf("TokenStats = %+v, want the parse error reported", s)
	}
	if err := z.ReloadTokens(); !errors.Is(err, auth.ErrBadTokensFile) {
		t.Errorf("ReloadTokens = %v, want ErrBadTokensFile", err)
	}
}

func TestNew_FailsOnABadTokensFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("web plaintext-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := auth.New(&config.Auth{TokensFile: path}, auth.Options{})
	if !errors.Is(err, auth.ErrBadTokensFile) || !strings.Contains(err.Error(), "auth.tokens_file") || !strings.Contains(err.Error(), path) {
		t.Errorf("New = %v, want ErrBadTokensFile naming auth.tokens_file and the path", err)
	}
}

func TestNewToken_IsRandomAndHashable(t *testing.T) {
	a, b := auth.NewToken(), auth.NewToken()
	if a == b || len(a) != 43 {
		t.Errorf("NewToken = %q, %q; want two different 43-character tokens", a, b)
	}
	table, err := auth.ParseTokens([]byte("web " + auth.HashToken(a) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := table.Lookup(a); !ok || name != "web" {
		t.Errorf("Lookup(NewToken) = %q, %v", name, ok)
	}
}
