package daemon

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// readGossipKeys reads the gossip keyring: one base64-encoded AES key (16,
// 24 or 32 bytes, as `head -c32 /dev/urandom | base64` gives) per line,
// the first being the primary key; blank lines and lines starting with #
// are skipped. A file that holds a single raw key of a valid length is
// read as that key. No path means no encryption.
func readGossipKeys(path string) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file: %w", err)
	}
	if validKeyLen(len(b)) && !isBase64Key(b) {
		return [][]byte{b}, nil
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(text)
		if err != nil || !validKeyLen(len(k)) {
			return nil, fmt.Errorf("--gossip-key-file %s line %d: each key must be 16, 24 or 32 bytes, base64-encoded (or the file a single raw key)", path, line)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--gossip-key-file %s holds no key; the key must be 16, 24 or 32 bytes, raw or base64-encoded", path)
	}
	return keys, nil
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// isBase64Key reports whether b is the base64 text of a valid key, so a
// 24- or 32-byte file of base64 text is read as the key it encodes.
func isBase64Key(b []byte) bool {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	return err == nil && validKeyLen(len(k))
}

// reloadGossipKeys re-reads the key file and hands the keyring to the node
// (on SIGHUP); a bad file or an unsafe change is logged and changes nothing.
func reloadGossipKeys(log *slog.Logger, path string, rotate func([][]byte) error) {
	if path == "" {
		log.Warn("SIGHUP: no --gossip-key-file to reload")
		return
	}
	keys, err := readGossipKeys(path)
	if err == nil {
		err = rotate(keys)
	}
	if err != nil {
		log.Error("SIGHUP: gossip keys not changed", "err", err)
		return
	}
	log.Info("SIGHUP: gossip keys reloaded", "keys", len(keys))
}
