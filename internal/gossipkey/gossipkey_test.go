package gossipkey_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/gossipkey"
)

var (
	k16 = []byte("0123456789abcdef")
	k32 = []byte("0123456789abcdef0123456789abcdef")
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestParse_RawBase64AndSeveralKeys(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want [][]byte
	}{
		"raw":             {string(k16), [][]byte{k16}},
		"base64":          {b64(k16) + "\n", [][]byte{k16}},
		"base64 32 bytes": {b64(k32), [][]byte{k32}},
		"several":         {"# new key first\n" + b64(k32) + "\n\n  " + b64(k16) + "  \n", [][]byte{k32, k16}},
	} {
		got, err := gossipkey.Parse([]byte(tc.in))
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %d keys, %v; want %d", name, len(got), err, len(tc.want))
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.want[i]) {
				t.Errorf("%s: key %d differs", name, i)
			}
		}
	}
}

func TestParse_ErrorsNameTheLineNeverTheKey(t *testing.T) {
	secret := b64([]byte("0123456789abcde")) // 15 bytes
	_, err := gossipkey.Parse([]byte(b64(k16) + "\n" + secret + "\n"))
	if !errors.Is(err, gossipkey.ErrBadKey) || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad second line: %v; want ErrBadKey naming line 2 and not the key", err)
	}
	if _, err := gossipkey.Parse([]byte("# only a comment\n\n")); !errors.Is(err, gossipkey.ErrNoKeys) {
		t.Fatalf("no keys: %v, want ErrNoKeys", err)
	}
	if _, err := gossipkey.Parse([]byte("too short")); !errors.Is(err, gossipkey.ErrBadKey) {
		t.Fatalf("short raw key: %v, want ErrBadKey", err)
	}
}

func TestWrite_RoundTripsAtomicallyWithMode0600(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gossip.keys")
	if err := os.WriteFile(path, []byte(b64(k16)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := gossipkey.Write(path, [][]byte{k32, k16}, "written by a test\nsecond line"); err != nil {
		t.Fatal(err)
	}
	got, err := gossipkey.Read(path)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], k32) || !bytes.Equal(got[1], k16) {
		t.Fatalf("read back %d keys, %v; want [k32 k16]", len(got), err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# written by a test\n# second line\n") {
		t.Fatalf("file does not start with the comment:\n%s", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestWrite_ReplacesTheTargetOfASymlink(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "real.keys"), filepath.Join(dir, "gossip.keys")
	if err := os.WriteFile(target, []byte(b64(k16)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := gossipkey.Write(link, [][]byte{k32}, ""); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got, err := gossipkey.Read(target); err != nil || !bytes.Equal(got[0], k32) {
		t.Fatalf("target not rewritten: %v", err)
	}
}

func TestWrite_RefusesBadKeysAndKeepsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gossip.keys")
	if err := os.WriteFile(path, []byte(b64(k16)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := gossipkey.Write(path, [][]byte{k16, []byte("short")}, ""); !errors.Is(err, gossipkey.ErrBadKey) {
		t.Fatalf("bad key: %v, want ErrBadKey", err)
	}
	if err := gossipkey.Write(path, nil, ""); !errors.Is(err, gossipkey.ErrNoKeys) {
		t.Fatalf("no keys: %v, want ErrNoKeys", err)
	}
	if got, err := gossipkey.Read(path); err != nil || !bytes.Equal(got[0], k16) {
		t.Fatalf("file changed by a refused write: %v", err)
	}
}

func TestID_IsShortStableAndDistinct(t *testing.T) {
	a, b := gossipkey.ID(k16), gossipkey.ID(k32)
	if len(a) != 16 || a == b || a != gossipkey.ID(bytes.Clone(k16)) {
		t.Fatalf("IDs %q %q", a, b)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(b64(k16)))
	f.Add(k16)
	f.Add([]byte("# c\n" + b64(k32) + "\n" + b64(k16) + "\n"))
	f.Add([]byte("\n\n#\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := gossipkey.Parse(data)
		if err != nil {
			if len(keys) != 0 {
				t.Fatalf("keys with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if !gossipkey.ValidLen(len(k)) {
				t.Fatalf("key of %d bytes", len(k))
			}
		}
		// What Format writes, Parse reads back the same.
		again, err := gossipkey.Parse(gossipkey.Format(keys, "c"))
		if err != nil || len(again) != len(keys) {
			t.Fatalf("round trip: %d keys, %v; want %d", len(again), err, len(keys))
		}
		for i := range keys {
			if !bytes.Equal(again[i], keys[i]) {
				t.Fatalf("round trip: key %d differs", i)
			}
		}
	})
}

func TestParse_ACommentedFileOfAKeysLengthIsNotARawKey(t *testing.T) {
	in := "# test\n" + b64(k16) + "\n" // 32 bytes, the length of a key
	got, err := gossipkey.Parse([]byte(in))
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], k16) {
		t.Fatalf("%d bytes of comment and key: %d keys, %v; want the base64 key", len(in), len(got), err)
	}
}
