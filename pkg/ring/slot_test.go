package ring_test

import (
	"testing"

	"github.com/ringcache/ringcache/pkg/ring"
)

// The expected slots are what CLUSTER KEYSLOT answers on a cluster-enabled
// redis-server (checked with redis-cli).
func TestSlot_MatchesRedisKeySlot(t *testing.T) {
	for key, want := range map[string]uint16{
		"foo":                  12182,
		"bar":                  5061,
		"{user1000}.following": 3443,
		"{user1000}.followers": 3443,
		"user1000":             3443,
		"users:42":             9664,
		"":                     0,
		"{}":                   15257, // an empty tag: the whole key hashes
		"{}foo":                9500,
		"foo{}{bar}":           8363,
		"foo{{bar}}zap":        4015, // the tag is "{bar"
		"foo{bar}{zap}":        5061, // the first tag only: "bar"
		"123456789":            12739,
	} {
		if got := ring.Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// CRC-16/XMODEM's check value: the CRC of "123456789" is 0x31C3.
func TestSlot_IsCRC16XModem(t *testing.T) {
	if got, want := ring.Slot("123456789"), uint16(0x31C3&(ring.SlotCount-1)); got != want {
		t.Fatalf("Slot(123456789) = %d, want %d", got, want)
	}
}

func TestSlotKey_PrefixesAllButTheDefaultNamespace(t *testing.T) {
	if got := ring.SlotKey("default", "default", "k"); got != "k" {
		t.Errorf("default namespace: %q", got)
	}
	if got := ring.SlotKey("default", "users", "42"); got != "users:42" {
		t.Errorf("users: %q", got)
	}
	if ring.Slot(ring.SlotKey("default", "users", "{u1}.a")) != ring.Slot("{u1}.b") {
		t.Errorf("a hash tag inside a namespaced key must decide its slot")
	}
}

func BenchmarkSlot(b *testing.B) {
	for b.Loop() {
		ring.Slot("users:1234567")
	}
}
