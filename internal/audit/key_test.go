package audit_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/audit"
)

func TestLoadKey_SharedFileIsUsedAsIs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	if err := os.WriteFile(path, []byte("  cluster-wide-secret-key-material\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := audit.LoadKey(path, t.TempDir())
	if err != nil || string(key) != "cluster-wide-secret-key-material" {
		t.Errorf("LoadKey = %q, %v", key, err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadKey(path, t.TempDir()); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("LoadKey(short) = %v, want an error saying at least 16 bytes", err)
	}
	if _, err := audit.LoadKey(filepath.Join(t.TempDir(), "missing"), t.TempDir()); err == nil {
		t.Error("LoadKey of a missing configured file made one up")
	}
}

func TestLoadKey_NodeKeyIsCreatedOnceInTheDataDir(t *testing.T) {
	dir := t.TempDir()
	k1, err := audit.LoadKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := audit.LoadKey("", dir)
	if err != nil || string(k1) != string(k2) {
		t.Errorf("second LoadKey = %q, %v; want the key made by the first, %q", k2, err, k1)
	}
	if len(k1) != 64 {
		t.Errorf("made key of %d bytes, want 32 random bytes in hex", len(k1))
	}
	fi, err := os.Stat(filepath.Join(dir, audit.KeyFileName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only the key (no temporary file left)", len(entries))
	}
	k3, err := audit.LoadKey("", t.TempDir())
	if err != nil || string(k3) == string(k1) {
		t.Errorf("another node's key = %q, %v; want a different random key", k3, err)
	}
}
