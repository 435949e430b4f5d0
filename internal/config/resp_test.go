package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/config"
)

func TestParse_RESPDefaultNamespaceMustBeConfigured(t *testing.T) {
	f, err := config.Parse([]byte("namespaces:\n  users: {}\nresp:\n  default_namespace: users\n"), t.TempDir())
	if err != nil || f.RESP.DefaultNamespace != "users" {
		t.Fatalf("Parse = %+v, %v", f, err)
	}
	_, err = config.Parse([]byte("namespaces:\n  users: {}\nresp:\n  default_namespace: sessions\n"), t.TempDir())
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "resp.default_namespace") {
		t.Fatalf("err = %v, want it to name resp.default_namespace", err)
	}
}

func TestParse_RESPRedirect(t *testing.T) {
	for _, v := range []string{"", "auto", "always"} {
		f, err := config.Parse([]byte("namespaces:\n  default: {}\nresp:\n  redirect: "+v+"\n"), t.TempDir())
		if err != nil || f.RESP.Redirect != v {
			t.Fatalf("redirect %q: Parse = %+v, %v", v, f, err)
		}
	}
	_, err := config.Parse([]byte("namespaces:\n  default: {}\nresp:\n  redirect: sometimes\n"), t.TempDir())
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "resp.redirect") || !strings.Contains(err.Error(), `"always"`) {
		t.Fatalf("err = %v, want it to name resp.redirect and its values", err)
	}
}
