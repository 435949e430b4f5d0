package ring

import "strings"

// SlotCount is the number of Redis Cluster hash slots.
const SlotCount = 16384

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key mod 16384, where a key holding a non-empty "{…}" hashes only what is
// between its first '{' and the next '}' (the hash tag), so
// "{user1000}.following" and "{user1000}.followers" share a slot. It is
// what Redis's keyHashSlot computes; any Redis Cluster client agrees on it.
func Slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) & (SlotCount - 1)
}

// SlotKey returns the string whose slot decides the owner of key in
// namespace ns: the key as a Redis client names it through the RESP door,
// "ns:key", or the key alone in the default namespace, which the RESP door
// addresses without a prefix. Every door routes (ns, key) by
// Slot(SlotKey(defaultNS, ns, key)), so one key has one owner whichever door
// it comes in by.
func SlotKey(defaultNS, ns, key string) string {
	if ns == defaultNS {
		return key
	}
	return ns + ":" + key
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial 0), as Redis's crc16.c.
func crc16(s string) uint16 {
	var crc uint16
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
