package daemon

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadGossipKey_RawOrBase64(t *testing.T) {
	dir := t.TempDir()
	raw := []byte("0123456789abcdef")
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, content := range map[string][]byte{
		"raw":    raw,
		"base64": []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
	} {
		got, err := readGossipKey(write(name, content))
		if err != nil || string(got) != string(raw) {
			t.Errorf("%s: key %q, %v", name, got, err)
		}
	}
	if _, err := readGossipKey(write("short", []byte("too short"))); err == nil || !strings.Contains(err.Error(), "16, 24 or 32 bytes") {
		t.Errorf("short key: %v", err)
	}
	if k, err := readGossipKey(""); k != nil || err != nil {
		t.Errorf("no file: %q, %v", k, err)
	}
}
