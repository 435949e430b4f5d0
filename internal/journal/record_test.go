package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"
)

// randomRecord draws a record covering the edges of every field.
func randomRecord(rng *rand.Rand) Record {
	str := func(max int) string {
		b := make([]byte, rng.IntN(max+1))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	r := Record{
		Namespace: str(20),
		Key:       str(40),
		Version:   rng.Uint64() >> rng.IntN(64),
		Attempts:  rng.Uint32() >> rng.IntN(32),
		LastError: str(30),
	}
	switch rng.IntN(4) {
	case 0:
		r.Delete = true
	case 1:
		r.Value = []byte{}
	default:
		r.Value = []byte(str(300))
	}
	switch rng.IntN(4) {
	case 0: // zero time
	case 1:
		r.Appended = time.Unix(-1<<40, 999_999_999).UTC()
	default:
		r.Appended = time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9)).UTC()
	}
	return r
}

// TestRecord_DecodeInvertsEncode is a property test: decode(encode(r)) == r
// for random records. Rerun a failure with JOURNAL_SEED=<printed seed>.
func TestRecord_DecodeInvertsEncode(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("JOURNAL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (rerun with JOURNAL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range 5000 {
		r, seq := randomRecord(rng), rng.Uint64()>>rng.IntN(64)
		got, gotSeq, err := decode(encode(r, seq))
		if err != nil {
			t.Fatalf("seed %d, record %d: decode: %v\n%#v", seed, i, err, r)
		}
		if !reflect.DeepEqual(got, r) || gotSeq != seq {
			t.Fatalf("seed %d, record %d: round trip\n got %#v seq %d\nwant %#v seq %d", seed, i, got, gotSeq, r, seq)
		}
	}
}

func TestRecord_DecodeRejectsCorruption(t *testing.T) {
	r := Record{Namespace: "users", Key: "42", Value: []byte("hello"), Version: 7,
		Appended: time.Unix(1700000000, 5).UTC(), Attempts: 2, LastError: "boom"}
	valid := encode(r, 3)

	// Any flipped bit or truncation fails the format or the CRC.
	for i := range valid {
		b := append([]byte{}, valid...)
		b[i] ^= 0x10
		if _, _, err := decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("byte %d flipped: err = %v, want ErrCorrupt", i, err)
		}
		if _, _, err := decode(valid[:i]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrCorrupt", i, err)
		}
	}

	// Structural errors behind a valid CRC.
	withCRC := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, castagnoli))
	}
	body := valid[:len(valid)-crcSize]
	set := func(i int, v byte) []byte {
		b := append([]byte{}, body...)
		b[i] = v
		return withCRC(b)
	}
	huge := withCRC(append([]byte{formatV1, 0, 0, 0, 0, 0, 0, 0, 0}, binary.AppendUvarint(nil, math.MaxUint64)...))
	for name, b := range map[string][]byte{
		"format version 2": set(0, 2),
		"unknown flag":     set(1, body[1]|0x80),
		"delete and value": set(1, flagDelete|flagValue),
		"trailing bytes":   withCRC(append(append([]byte{}, body...), 0)),
		"huge length":      huge,
		"bad varint":       withCRC([]byte{formatV1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"nanos range":      withCRC(encodeFields(0, 0, 0, 1e9, 0)),
		"attempts range":   withCRC(encodeFields(0, 0, 0, 0, math.MaxUint32+1)),
	} {
		if _, _, err := decode(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// encodeFields builds a record body (no CRC) with the given varint fields
// and empty strings.
func encodeFields(seq, version uint64, sec int64, nsec, attempts uint64) []byte {
	b := []byte{formatV1, 0}
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, version)
	b = binary.AppendVarint(b, sec)
	b = binary.AppendUvarint(b, nsec)
	b = binary.AppendUvarint(b, attempts)
	return append(b, 0, 0, 0)
}

// FuzzDecodeRecord: decode never panics, fails only with ErrCorrupt, and what
// it accepts survives another round trip.
func FuzzDecodeRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		f.Add(encode(randomRecord(rng), rng.Uint64()))
	}
	f.Add(encode(Record{Namespace: "n", Key: "k", Delete: true}, 1))
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, seq, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, seq2, err := decode(encode(r, seq))
		if err != nil || seq2 != seq || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %#v: %#v, %v", r, again, err)
		}
	})
}
