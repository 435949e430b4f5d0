package seal

import (
	"bytes"
	"errors"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestSeal_RoundTripRotationAndTamper(t *testing.T) {
	s, err := New([][]byte{key(1)})
	if err != nil {
		t.Fatal(err)
	}
	old := s.Seal(AAD("users", "42"), []byte("secret value"))
	if bytes.Contains(old, []byte("secret")) {
		t.Fatal("sealed value holds the plaintext")
	}
	got, err := s.Open(AAD("users", "42"), old)
	if err != nil || string(got) != "secret value" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(AAD("users", "43"), old); !errors.Is(err, ErrOpen) {
		t.Fatalf("a value moved to another key opened: %v", err)
	}
	tampered := bytes.Clone(old)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.Open(AAD("users", "42"), tampered); !errors.Is(err, ErrOpen) {
		t.Fatalf("a tampered value opened: %v", err)
	}
	// Rotation: the new key seals, the old one still opens.
	if err := s.Reload([][]byte{key(2), key(1)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(AAD("users", "42"), old); err != nil || string(got) != "secret value" {
		t.Fatalf("after adding a key, the old value = %q, %v", got, err)
	}
	fresh := s.Seal(AAD("users", "42"), []byte("v2"))
	if err := s.Reload([][]byte{key(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(AAD("users", "42"), old); !errors.Is(err, ErrOpen) {
		t.Fatalf("the dropped key still opens: %v", err)
	}
	if got, err := s.Open(AAD("users", "42"), fresh); err != nil || string(got) != "v2" {
		t.Fatalf("new value = %q, %v", got, err)
	}
	if err := s.Reload([][]byte{[]byte("short")}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("a short key: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	s, _ := New([][]byte{key(7)})
	f.Add(s.Seal([]byte("a"), []byte("b")))
	f.Add([]byte{format, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = s.Open([]byte("a"), b) // never panics
	})
}
