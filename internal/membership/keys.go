package membership

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/memberlist"

	"github.com/ringcache/ringcache/internal/gossipkey"
)

// Errors of the keyring operations and of joining. Messages name keys by
// KeyID, never by their bytes.
var (
	// ErrBadKey: a key is not 16, 24 or 32 bytes long.
	ErrBadKey = errors.New("membership: gossip key must be 16, 24 or 32 bytes (AES-128, -192 or -256)")
	// ErrNotEncrypted: a keyring operation on a node started without keys.
	ErrNotEncrypted = errors.New("membership: gossip is not encrypted on this node; encryption is turned on by restarting every node with a key, not by a key operation")
	// ErrNoKeys: a key list with no key, on a node whose gossip is encrypted.
	ErrNoKeys = errors.New("membership: the key list is empty; gossip encryption cannot be turned off at runtime")
	// ErrKeyNotInstalled: UseKey of a key that is not in the keyring.
	ErrKeyNotInstalled = errors.New("membership: key is not installed; install it on every node first")
	// ErrRemovePrimary: removing the key in use as primary.
	ErrRemovePrimary = errors.New("membership: refusing to remove the primary key; make another key primary on every node first")
	// ErrPrimaryNotInstalled: ReloadKeys making primary a key this node did
	// not already hold, which would skip step 1 of a rotation.
	ErrPrimaryNotInstalled = errors.New("membership: refusing to make a new key primary before it is installed; install it as a secondary key on every node first")
	// ErrSeedsUnreachable: no seed answered a join attempt (not up yet, or
	// the network is cut).
	ErrSeedsUnreachable = errors.New("membership: no seed answered")
	// ErrSeedsRefused: a seed answered but did not admit this node: another
	// gossip key, encryption on one side only, or an incompatible protocol.
	// ErrIncompatible: a peer's partitioning differs from this node's.
	ErrIncompatible = errors.New("membership: incompatible peer")
	ErrSeedsRefused = errors.New("membership: seeds answered but refused this node; check that every node has the same gossip keys and encryption setting")
)

// KeyID returns a short fingerprint of a gossip key (the first 8 bytes of
// its SHA-256, in hex): safe to log and show, and enough to tell keys apart.
func KeyID(key []byte) string { return gossipkey.ID(key) }

// configKeys validates and copies the keys of cfg.
func configKeys(cfg Config) ([][]byte, error) {
	if len(cfg.SecretKey) > 0 && len(cfg.Keys) > 0 {
		return nil, errors.New("membership: set Keys or SecretKey, not both")
	}
	keys := cfg.Keys
	if len(cfg.SecretKey) > 0 {
		keys = [][]byte{cfg.SecretKey}
	}
	if err := validateKeys(keys); err != nil {
		return nil, err
	}
	return cloneKeys(keys), nil
}

func validateKeys(keys [][]byte) error {
	for i, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return fmt.Errorf("%w: key %d of %d has %d bytes", ErrBadKey, i+1, len(keys), len(k))
		}
	}
	return nil
}

func cloneKeys(keys [][]byte) [][]byte {
	if len(keys) == 0 {
		return nil
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = bytes.Clone(k)
	}
	return out
}

// Keys returns copies of the installed gossip keys, primary first, or nil
// when gossip is not encrypted.
func (m *Membership) Keys() [][]byte {
	if m.keyring == nil {
		return nil
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	return cloneKeys(m.keyring.GetKeys())
}

// InstallKey adds key to the keyring as a secondary key: this node then
// decrypts messages encrypted with it. Installing a key twice is a no-op.
func (m *Membership) InstallKey(key []byte) error {
	if m.keyring == nil {
		return ErrNotEncrypted
	}
	if err := validateKeys([][]byte{key}); err != nil {
		return err
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	return m.installLocked(key)
}

// UseKey makes an installed key the primary: this node then encrypts with
// it. Every node must hold the key before any node uses it.
func (m *Membership) UseKey(key []byte) error {
	if m.keyring == nil {
		return ErrNotEncrypted
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	return m.useLocked(key)
}

// RemoveKey drops a secondary key; removing a key that is not installed is
// a no-op, and removing the primary key is refused (ErrRemovePrimary).
func (m *Membership) RemoveKey(key []byte) error {
	if m.keyring == nil {
		return ErrNotEncrypted
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	return m.removeLocked(key)
}

// ReloadKeys makes the keyring hold exactly keys, with keys[0] primary, as
// when a key file is re-read. It installs the new keys first, then switches
// the primary, then removes the keys no longer listed, so this node never
// lacks a key it may still receive. It changes nothing, and says why, when
// keys are malformed or empty, when keys[0] is new to this node
// (ErrPrimaryNotInstalled), or when the list drops the current primary
// (ErrRemovePrimary): those would skip a step of the rotation described in
// the package doc. On a node without encryption, an empty list is a no-op.
func (m *Membership) ReloadKeys(keys [][]byte) error {
	if m.keyring == nil {
		if len(keys) == 0 {
			return nil
		}
		return ErrNotEncrypted
	}
	if len(keys) == 0 {
		return ErrNoKeys
	}
	if err := validateKeys(keys); err != nil {
		return err
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	current := cloneKeys(m.keyring.GetKeys())
	primary, next := current[0], keys[0]
	has := func(list [][]byte, k []byte) bool {
		return slices.ContainsFunc(list, func(x []byte) bool { return bytes.Equal(x, k) })
	}
	if !has(keys, primary) {
		return fmt.Errorf("%w: the list drops key %s, the primary", ErrRemovePrimary, KeyID(primary))
	}
	if !has(current, next) {
		return fmt.Errorf("%w: key %s", ErrPrimaryNotInstalled, KeyID(next))
	}
	var installed, removed int
	for _, k := range keys[1:] {
		if !has(current, k) {
			if err := m.installLocked(k); err != nil {
				return err
			}
			installed++
		}
	}
	if err := m.useLocked(next); err != nil {
		return err
	}
	for _, k := range current {
		if !has(keys, k) {
			if err := m.removeLocked(k); err != nil {
				return err
			}
			removed++
		}
	}
	m.log.Info("gossip keys reloaded", "primary", KeyID(next), "primary_changed", !bytes.Equal(primary, next),
		"installed", installed, "removed", removed, "keys", len(keys))
	return nil
}

func (m *Membership) installLocked(key []byte) error {
	if err := m.keyring.AddKey(bytes.Clone(key)); err != nil {
		return fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	return nil
}

func (m *Membership) useLocked(key []byte) error {
	// Pass the keyring's own copy: memberlist keeps the slice it is given.
	keys := m.keyring.GetKeys()
	i := slices.IndexFunc(keys, func(x []byte) bool { return bytes.Equal(x, key) })
	if i < 0 {
		return fmt.Errorf("%w: key %s", ErrKeyNotInstalled, KeyID(key))
	}
	return m.keyring.UseKey(keys[i])
}

// removeLocked drops a secondary key. memberlist's RemoveKey shifts the
// keyring's slice in place; a packet being decrypted at that moment may try
// one key twice or skip one, and fails at worst (memberlist drops it, and
// gossip repeats itself). It happens only for packets under a secondary
// key, which by step 3 of a rotation nobody sends any more.
func (m *Membership) removeLocked(key []byte) error {
	if bytes.Equal(m.keyring.GetPrimaryKey(), key) {
		return fmt.Errorf("%w: key %s", ErrRemovePrimary, KeyID(key))
	}
	return m.keyring.RemoveKey(key)
}
