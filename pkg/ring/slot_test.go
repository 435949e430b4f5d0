package ring

import (
	"bufio"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSlot_MatchesRedisKeyslot(t *testing.T) {
	// CLUSTER KEYSLOT answers of redis-server 7.0.15, and the examples of
	// the Redis Cluster specification.
	for key, want := range map[string]uint16{
		"foo":                  12182,
		"bar":                  5061,
		"somekey":              11058,
		"foo{hash_tag}":        2515,
		"user1000":             3443,
		"{user1000}.following": 3443,
		"{user1000}.followers": 3443,
		"foo{}{bar}":           8363,  // empty tag: the whole key
		"foo{{bar}}zap":        4015,  // tag "{bar"
		"foo{bar}{zap}":        5061,  // first tag only: "bar"
		"{}":                   15257, // whole key
		"{":                    4092,
		"a{b":                  13340, // unterminated: whole key
		"a}b{c}d":              7365,  // '}' before the '{' does not count
		"{{}}":                 4092,  // tag "{"
		"x{}y{z}":              15453, // the first '{' decides, even with an empty tag
		"":                     0,
		"123456789":            12739,
		"users:42":             9664,
		"héllo":                11061,
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestSlot_MatchesRedisOnRandomKeys(t *testing.T) {
	f, err := os.Open("testdata/keyslots.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		hexKey, slotText, _ := strings.Cut(line, " ")
		if hexKey == "-" {
			hexKey = ""
		}
		key, err := hex.DecodeString(hexKey)
		if err != nil {
			t.Fatal(err)
		}
		want, err := strconv.Atoi(slotText)
		if err != nil {
			t.Fatal(err)
		}
		if got := Slot(string(key)); int(got) != want {
			t.Errorf("Slot(%q) = %d, redis says %d", key, got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil || n < 400 {
		t.Fatalf("read %d keys, err %v", n, err)
	}
}

func TestCRC16_XMODEMCheckValue(t *testing.T) {
	if got := crc16(0, "123456789"); got != 0x31c3 {
		t.Fatalf("crc16(123456789) = %#x, want 0x31c3", got)
	}
}

func TestSlotKey_PrefixesOtherNamespaces(t *testing.T) {
	for _, c := range []struct{ def, ns, key, want string }{
		{"", "", "42", "42"},
		{"", "users", "42", "users:42"},
		{"main", "main", "users:42", "users:42"},
		{"main", "", "42", ":42"},
	} {
		if got := SlotKey(c.def, c.ns, c.key); got != c.want {
			t.Errorf("SlotKey(%q, %q, %q) = %q, want %q", c.def, c.ns, c.key, got, c.want)
		}
	}
}

func TestSlotOf_EqualsSlotOfSlotKey(t *testing.T) {
	for _, c := range [][3]string{
		{"", "users", "42"},
		{"", "users", "{tag}x"},
		{"", "us{er", "s}42"}, // the tag spans the colon
		{"", "us{", "}"},
		{"", "{}", "x{y}"},
		{"", "}", "{a}"},
		{"d", "d", "{a}b"},
	} {
		if got, want := slotOf(c[0], c[1], c[2]), Slot(SlotKey(c[0], c[1], c[2])); got != want {
			t.Errorf("slotOf%q = %d, want %d", c, got, want)
		}
	}
}

func FuzzSlotOf(f *testing.F) {
	f.Add("", "users", "42")
	f.Add("", "a{b", "c}d")
	f.Add("x", "x", "{}")
	f.Fuzz(func(t *testing.T, def, ns, key string) {
		if got, want := slotOf(def, ns, key), Slot(SlotKey(def, ns, key)); got != want {
			t.Fatalf("slotOf(%q, %q, %q) = %d, Slot(SlotKey) = %d", def, ns, key, got, want)
		}
		if s := Slot(key); s >= Slots {
			t.Fatalf("slot %d out of range", s)
		}
	})
}

var sink int

func BenchmarkSlot(b *testing.B) {
	for b.Loop() {
		sink += int(Slot("user:1000:profile"))
	}
}

func BenchmarkPartitionFor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink += PartitionFor("", "users", "1000:profile", DefaultPartitionCount)
	}
}
