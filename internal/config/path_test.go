package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParse_UnknownKeyIsNamedByItsPath(t *testing.T) {
	doc := "namespaces:\n  users:\n    read: aside\n    tll: 5m\nbackends:\n  local: {driver: sqlite, path: x.db, dns: y}\n"
	_, err := Parse([]byte(doc), t.TempDir())
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, want := range []string{"namespaces.users.tll (line 4): unknown key", "backends.local.dns (line 6): unknown key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
