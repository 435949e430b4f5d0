package daemon

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		got, err := readGossipKeys(write(name, content))
		if err != nil || len(got) != 1 || string(got[0]) != string(raw) {
			t.Errorf("%s: keys %q, %v", name, got, err)
		}
	}
	if _, err := readGossipKeys(write("short", []byte("too short"))); err == nil || !strings.Contains(err.Error(), "16, 24 or 32 bytes") {
		t.Errorf("short key: %v", err)
	}
	if k, err := readGossipKeys(""); k != nil || err != nil {
		t.Errorf("no file: %q, %v", k, err)
	}
}

func TestReadGossipKeys_SeveralKeysFirstIsPrimary(t *testing.T) {
	a, b := "0123456789abcdef0123456789abcdef", "fedcba9876543210"
	p := filepath.Join(t.TempDir(), "keys")
	body := "# rotation step 2: new key first\n" + base64.StdEncoding.EncodeToString([]byte(a)) + "\n\n" + base64.StdEncoding.EncodeToString([]byte(b)) + "\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readGossipKeys(p)
	if err != nil || len(got) != 2 || string(got[0]) != a || string(got[1]) != b {
		t.Fatalf("keys %q, %v; want [%q %q]", got, err, a, b)
	}
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString([]byte(a))+"\nnot-a-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readGossipKeys(p); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad second line: %v, want an error naming line 2", err)
	}
}

func TestParseHotCache(t *testing.T) {
	ok := Flags{HotCacheBytes: "16MiB", HotCacheMinRate: 100, HotCacheTTL: time.Second}
	if b, err := parseHotCache(ok); err != nil || b != 16<<20 {
		t.Fatalf("16MiB: %d, %v", b, err)
	}
	off := ok
	off.HotCacheBytes = "0"
	if b, err := parseHotCache(off); err != nil || b != 0 {
		t.Fatalf("0: %d, %v", b, err)
	}
	if b, err := parseHotCache(Flags{}); err != nil || b != 0 {
		t.Fatalf("zero Flags: %d, %v", b, err)
	}
	for name, f := range map[string]Flags{
		"--hot-cache-bytes":    {HotCacheBytes: "lots", HotCacheMinRate: 100, HotCacheTTL: time.Second},
		"--hot-cache-min-rate": {HotCacheBytes: "1MiB", HotCacheMinRate: -1, HotCacheTTL: time.Second},
		"--hot-cache-ttl":      {HotCacheBytes: "1MiB", HotCacheMinRate: 100, HotCacheTTL: -time.Second},
	} {
		if _, err := parseHotCache(f); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%+v: error %v, want one naming %s", f, err, name)
		}
	}
}
