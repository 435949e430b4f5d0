// Package gossipkey reads and writes gossip key files and names keys by a
// fingerprint that is safe to show.
//
// A key file holds one base64-encoded AES key (16, 24 or 32 bytes, as
// `head -c 32 /dev/urandom | base64` makes) per line, the first being the
// primary key; blank lines and lines starting with # are skipped. A file
// that holds a single raw key of a valid length is read as that key.
//
// Guarantees: errors name files, lines and fingerprints, never key bytes;
// Write replaces a file atomically (a reader sees the old file or the new
// one, never a mix, also after a crash) and leaves it readable by its owner
// only.
package gossipkey

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Errors of Parse and Read.
var (
	// ErrBadKey: a line or file that is not a 16-, 24- or 32-byte key.
	ErrBadKey = errors.New("each gossip key must be 16, 24 or 32 bytes, base64-encoded (or the file a single raw key)")
	// ErrNoKeys: a file with no key in it.
	ErrNoKeys = errors.New("the gossip key file holds no key; a key is 16, 24 or 32 bytes, raw or base64-encoded")
)

// ID returns a short fingerprint of key (the first 8 bytes of its SHA-256,
// in hex): safe to log and show, and enough to tell keys apart.
func ID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// ValidLen reports whether n is the length of an AES-128, -192 or -256 key.
func ValidLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// Parse reads the keys of a key file's contents, primary first. Contents
// that are not lines of base64 keys but have the length of a key are that
// raw key. Its errors wrap ErrBadKey (naming the line) or ErrNoKeys.
func Parse(data []byte) ([][]byte, error) {
	keys, err := parseLines(data)
	if err != nil && ValidLen(len(data)) {
		return [][]byte{bytes.Clone(data)}, nil
	}
	return keys, err
}

func parseLines(data []byte) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(text)
		if err != nil || !ValidLen(len(k)) {
			return nil, fmt.Errorf("line %d: %w", line, ErrBadKey)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		// Only a line too long for the scanner: no key is that long.
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	return keys, nil
}

// Read reads the key file at path; see Parse.
func Read(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// Format returns the contents of a key file holding keys, primary first,
// after comment (each of its lines prefixed with "# ").
func Format(keys [][]byte, comment string) []byte {
	var b bytes.Buffer
	for line := range strings.Lines(comment) {
		b.WriteString("# " + strings.TrimRight(line, "\n") + "\n")
	}
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	return b.Bytes()
}

// Write replaces the file at path with Format(keys, comment), atomically:
// it writes a temporary file beside it (mode 0600), syncs it, renames it
// over path and syncs the directory. The directory must be writable. When
// path is a symbolic link, the file it points to is replaced, not the link.
func Write(path string, keys [][]byte, comment string) (err error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if len(keys) == 0 {
		return ErrNoKeys
	}
	for i, k := range keys {
		if !ValidLen(len(k)) {
			return fmt.Errorf("key %d of %d (%s): %w", i+1, len(keys), ID(k), ErrBadKey)
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(Format(keys, comment)); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
