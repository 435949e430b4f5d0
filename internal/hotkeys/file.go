package hotkeys

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
)

// FileName is the list's name in a node's data directory.
const FileName = "hotkeys.json"

// formatVersion is the version of the file's layout; a file of another
// version is not read.
const formatVersion = 1

// ErrFormat means the file is not a hot-key list this version reads.
var ErrFormat = errors.New("hotkeys: not a hot-key list of this version")

// List is the file's content.
type List struct {
	Version int       `json:"version"`
	Node    string    `json:"node"`
	Written time.Time `json:"written"`
	// Partitions is the partition count the keys were counted under.
	Partitions int   `json:"partitions"`
	Keys       []Key `json:"keys"`
}

// Save writes list to path crash-safely: a temporary file in the same
// directory, fsync'd, renamed over path, and the directory fsync'd, so a
// crash at any point leaves either the previous file or the new one.
func Save(path string, list List) error {
	list.Version = formatVersion
	b, err := json.Marshal(list)
	if err != nil {
		return fmt.Errorf("hotkeys: %w", err)
	}
	if err := renameio.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("hotkeys: write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("hotkeys: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("hotkeys: sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// Load reads the list at path, keeping at most maxKeys keys and maxBytes
// bytes of it (the file may come from a run with larger bounds). A missing
// file is an empty list; a file it cannot read is an error wrapping
// ErrFormat.
func Load(path string, maxKeys, maxBytes int) (List, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return List{Version: formatVersion}, nil
	}
	if err != nil {
		return List{}, fmt.Errorf("hotkeys: %w", err)
	}
	var list List
	if err := json.Unmarshal(b, &list); err != nil {
		return List{}, fmt.Errorf("%w: %s: %v", ErrFormat, path, err)
	}
	if list.Version != formatVersion {
		return List{}, fmt.Errorf("%w: %s has version %d", ErrFormat, path, list.Version)
	}
	list.Keys = Bound(list.Keys, max(maxKeys, 0), max(maxBytes, 0))
	return list, nil
}
