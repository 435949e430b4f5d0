package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// minKeyBytes is the shortest HMAC key accepted.
const minKeyBytes = 16

// KeyFileName is the key a node makes in its data directory when the
// config names no audit key file.
const KeyFileName = "audit.key"

// LoadKey returns the HMAC key of key hashes. With keyFile (the config's
// auth.audit_key_file), it is that file's content without surrounding
// white space, at least 16 bytes; give every node the same file (a
// Kubernetes Secret) so that the lines of all nodes about one key carry the
// same hash. Without one, it is dataDir/audit.key, created with 32 random
// bytes (hex) on first use: hashes then match across restarts of this node
// but not across nodes.
func LoadKey(keyFile, dataDir string) ([]byte, error) {
	if keyFile != "" {
		return readKey(keyFile)
	}
	path := filepath.Join(dataDir, KeyFileName)
	key, err := readKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw) // never fails; see crypto/rand.Read
	text := []byte(hex.EncodeToString(raw) + "\n")
	if err := createOnce(path, text); err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	return readKey(path) // the key that won, if another process made one first
}

// createOnce writes data to path unless path exists, so that a crash never
// leaves a partial key: the data goes to a synced temporary file that is
// then linked to path.
func createOnce(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit.key.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	key := bytes.TrimSpace(b)
	if len(key) < minKeyBytes {
		return nil, fmt.Errorf("audit key: %s holds %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)", path, len(key), minKeyBytes, path)
	}
	return key, nil
}
