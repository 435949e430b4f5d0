// Package seal encrypts the values of sensitive namespaces where they
// rest on disk (the write-behind journal, and the replicas' copies of it):
// AES-256-GCM under the first key of a keyring, with the namespace and key
// as additional data, so a sealed value cannot be moved to another key
// unnoticed. Every key of the ring opens what it sealed, so keys rotate
// without an outage: add the new key first (it seals from then on), and
// drop the old one once no record sealed with it is pending.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
)

// format is the first byte of a sealed value.
const format = 0xA1

// Errors.
var (
	// ErrBadKey: a key that is not 32 bytes.
	ErrBadKey = errors.New("seal: keys must be 32 bytes (AES-256)")
	// ErrOpen: a sealed value no key of the ring opens, or a value that is
	// not sealed, or one altered on disk.
	ErrOpen = errors.New("seal: cannot open the value: no key of the ring sealed it, or it was altered")
)

// Sealer is safe for concurrent use; Reload swaps its keyring atomically.
type Sealer struct{ ring atomic.Pointer[keyring] }

type keyring struct {
	seal cipher.AEAD
	id   uint32
	open map[uint32]cipher.AEAD
}

// New returns a Sealer over keys, the first sealing.
func New(keys [][]byte) (*Sealer, error) {
	s := &Sealer{}
	return s, s.Reload(keys)
}

// Reload replaces the keyring; on error the previous one stays.
func (s *Sealer) Reload(keys [][]byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: none given", ErrBadKey)
	}
	kr := &keyring{open: map[uint32]cipher.AEAD{}}
	for i, k := range keys {
		if len(k) != 32 {
			return fmt.Errorf("%w: key %d is %d bytes", ErrBadKey, i+1, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return err
		}
		id := KeyID(k)
		if i == 0 {
			kr.seal, kr.id = aead, id
		}
		kr.open[id] = aead
	}
	s.ring.Store(kr)
	return nil
}

// KeyID is a key's 32-bit fingerprint, stored with each sealed value.
func KeyID(k []byte) uint32 {
	sum := sha256.Sum256(k)
	return binary.BigEndian.Uint32(sum[:4])
}

// Seal encrypts plaintext, bound to aad.
func (s *Sealer) Seal(aad, plaintext []byte) []byte {
	kr := s.ring.Load()
	out := make([]byte, 5, 5+kr.seal.NonceSize()+len(plaintext)+kr.seal.Overhead())
	out[0] = format
	binary.BigEndian.PutUint32(out[1:5], kr.id)
	nonce := make([]byte, kr.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	out = append(out, nonce...)
	return kr.seal.Seal(out, nonce, plaintext, aad)
}

// Open decrypts a value Seal made with aad.
func (s *Sealer) Open(aad, sealed []byte) ([]byte, error) {
	kr := s.ring.Load()
	if len(sealed) < 5 || sealed[0] != format {
		return nil, ErrOpen
	}
	aead, ok := kr.open[binary.BigEndian.Uint32(sealed[1:5])]
	if !ok || len(sealed) < 5+aead.NonceSize() {
		return nil, ErrOpen
	}
	nonce, ct := sealed[5:5+aead.NonceSize()], sealed[5+aead.NonceSize():]
	out, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// AAD is the additional data a value of key in namespace ns is sealed with.
func AAD(ns, key string) []byte { return []byte(ns + "\x00" + key) }
