package ring

import "strings"

// Slots is the number of Redis Cluster hash slots. A key's slot is
// CRC16(key) mod Slots, or of its hash tag when it has one.
const Slots = 16384

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM, as Redis
// computes it) of the key, or of its hash tag, mod 16384. The hash tag is
// the content between the first '{' and the first '}' after it, when that
// content is not empty; "{user1000}.following" and "{user1000}.followers"
// share a slot. It agrees with Redis's CLUSTER KEYSLOT for every key.
func Slot(key string) uint16 {
	if s, e, ok := hashTag(key); ok {
		key = key[s:e]
	}
	return crc16(0, key) & (Slots - 1)
}

// SlotKey returns the Redis key that addresses key of namespace ns, given
// the namespace that keys without a namespace prefix belong to: key itself
// in the default namespace, else ns + ":" + key. The owner of (ns, key) is
// the owner of Slot(SlotKey(defaultNS, ns, key)), whichever door a request
// comes in by.
func SlotKey(defaultNS, ns, key string) string {
	if ns == defaultNS {
		return key
	}
	return ns + ":" + key
}

// hashTag returns the bounds of key's hash tag under Redis's rules: the
// first '{', then the first '}' after it, with something in between.
func hashTag(key string) (start, end int, ok bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return 0, 0, false
	}
	closing := strings.IndexByte(key[open+1:], '}')
	if closing <= 0 { // none, or "{}"
		return 0, 0, false
	}
	return open + 1, open + 1 + closing, true
}

// slotOf is Slot(SlotKey(defaultNS, ns, key)) without building the string.
func slotOf(defaultNS, ns, key string) uint16 {
	if ns == defaultNS {
		return Slot(key)
	}
	if strings.IndexByte(ns, '{') >= 0 {
		// Rare: the hash tag may span the namespace, the colon and the key.
		return Slot(ns + ":" + key)
	}
	// The first '{' of ns + ":" + key is in key, and so is its '}'.
	if s, e, ok := hashTag(key); ok {
		return crc16(0, key[s:e]) & (Slots - 1)
	}
	return crc16(crc16(crc16(0, ns), ":"), key) & (Slots - 1)
}

// crc16 continues the CRC-16/XMODEM (polynomial 0x1021, initial value 0, no
// reflection) crc over s.
func crc16(crc uint16, s string) uint16 {
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return crc
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
