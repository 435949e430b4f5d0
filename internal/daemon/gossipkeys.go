package daemon

import (
	"fmt"
	"log/slog"

	"github.com/ringcache/ringcache/internal/gossipkey"
)

// readGossipKeys reads the gossip keyring from path (internal/gossipkey
// says the format: base64 keys, one a line, the first primary, or a single
// raw key). No path means no encryption.
func readGossipKeys(path string) ([][]byte, error) {
	if path == "" {
		return nil, nil
	}
	keys, err := gossipkey.Read(path)
	if err != nil {
		return nil, fmt.Errorf("--gossip-key-file: %w", err)
	}
	return keys, nil
}

// reloadGossipKeys re-reads the key file and hands the keyring to the node
// (on SIGHUP); a bad file or an unsafe change is logged and changes nothing.
func reloadGossipKeys(log *slog.Logger, path string, rotate func([][]byte) error) {
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
