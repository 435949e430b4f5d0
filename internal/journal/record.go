package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// Record is one write-behind write of one key.
//
// Records returned by the Journal are copies: the caller owns every byte
// slice and may keep or change them.
type Record struct {
	Namespace string
	Key       string
	Value     []byte // nil for a delete
	Delete    bool   // a tombstone: the flusher deletes the row
	// Version orders the writes of one key (a hybrid logical clock from the
	// caller); higher is newer. The flusher passes it to the database so an
	// older write never overwrites a newer row.
	Version uint64
	// Appended is when the oldest unflushed write of this key was
	// acknowledged. Set by Append (the caller's value is ignored) and kept
	// when a newer write of the key replaces a pending one. Always UTC.
	Appended time.Time
	// Attempts counts failed flush attempts of this version (Retry, Bury).
	Attempts uint32
	// LastError is the last flush error (dead letters show it).
	LastError string

	// opened is the value the flusher writes to the database when it is
	// not Value as stored (FlusherConfig.Open: a sealed value, opened).
	opened []byte
}

// size is what a record counts against Options.MaxBytes: key and value bytes.
func (r *Record) size() int64 {
	return int64(len(r.Namespace) + len(r.Key) + len(r.Value))
}

// The stored form of a record (format version 1):
//
//	version  byte    always 1
//	flags    byte    bit 0: delete; bit 1: Value is non-nil
//	seq      uvarint queue sequence of a pending record; 0 for a dead letter
//	Version  uvarint
//	Appended varint  Unix seconds, then uvarint nanoseconds (< 1e9)
//	Attempts uvarint (fits in uint32)
//	then four length-prefixed (uvarint) byte strings:
//	         Namespace, Key, LastError, Value (Value only if flag bit 1)
//	crc      4 bytes big-endian CRC-32C (Castagnoli) of all bytes before it
const (
	formatV1    = 1
	flagDelete  = 1 << 0
	flagValue   = 1 << 1
	knownFlags  = flagDelete | flagValue
	crcSize     = 4
	maxNanos    = 999_999_999
	minEncoding = 2 + 5 + 3 + crcSize // header, five varints, three lengths, crc
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encode returns the stored form of r with queue sequence seq. The result is
// a fresh slice (bbolt requires a Put value to stay valid until the
// transaction ends, so it must never be reused).
func encode(r Record, seq uint64) []byte {
	n := 2 + 6*binary.MaxVarintLen64 + len(r.Namespace) + len(r.Key) +
		len(r.LastError) + len(r.Value) + 4*binary.MaxVarintLen64 + crcSize
	b := make([]byte, 0, n)
	var flags byte
	if r.Delete {
		flags |= flagDelete
	}
	if r.Value != nil {
		flags |= flagValue
	}
	b = append(b, formatV1, flags)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, r.Version)
	b = binary.AppendVarint(b, r.Appended.Unix())
	b = binary.AppendUvarint(b, uint64(r.Appended.Nanosecond()))
	b = binary.AppendUvarint(b, uint64(r.Attempts))
	b = appendString(b, r.Namespace)
	b = appendString(b, r.Key)
	b = appendString(b, r.LastError)
	if r.Value != nil {
		b = appendString(b, string(r.Value))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decode parses the stored form of a record. Every slice and string in the
// result is a copy, so it stays valid after the bbolt transaction that
// produced b ends. Malformed input returns an error wrapping ErrCorrupt; decode
// never panics.
func decode(b []byte) (Record, uint64, error) {
	var r Record
	if len(b) < minEncoding {
		return r, 0, corruptf("record of %d bytes is shorter than the minimum %d", len(b), minEncoding)
	}
	if b[0] != formatV1 {
		return r, 0, corruptf("unknown record format version %d", b[0])
	}
	body, sum := b[:len(b)-crcSize], binary.BigEndian.Uint32(b[len(b)-crcSize:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return r, 0, corruptf("checksum mismatch: stored %08x, computed %08x", sum, got)
	}
	flags := body[1]
	if flags&^knownFlags != 0 {
		return r, 0, corruptf("unknown flags %#02x", flags)
	}
	if flags&flagDelete != 0 && flags&flagValue != 0 {
		return r, 0, corruptf("a delete record carries a value")
	}
	d := decoder{b: body[2:]}
	seq := d.uvarint("seq")
	r.Version = d.uvarint("version")
	sec := d.varint("appended seconds")
	nsec := d.uvarint("appended nanoseconds")
	attempts := d.uvarint("attempts")
	r.Namespace = d.string("namespace")
	r.Key = d.string("key")
	r.LastError = d.string("last error")
	if flags&flagValue != 0 {
		r.Value = d.bytes("value")
	}
	switch {
	case d.err != nil:
		return Record{}, 0, d.err
	case len(d.b) != 0:
		return Record{}, 0, corruptf("%d trailing bytes", len(d.b))
	case nsec > maxNanos:
		return Record{}, 0, corruptf("appended nanoseconds %d out of range", nsec)
	case attempts > math.MaxUint32:
		return Record{}, 0, corruptf("attempts %d out of range", attempts)
	}
	r.Delete = flags&flagDelete != 0
	r.Appended = time.Unix(sec, int64(nsec)).UTC()
	r.Attempts = uint32(attempts)
	return r, seq, nil
}

// decoder reads fields off b; the first failure sticks in err and later
// reads return zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = corruptf("bad varint in field %s", field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = corruptf("bad varint in field %s", field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a copy of the next length-prefixed field (never nil on
// success): the result must outlive the bbolt transaction.
func (d *decoder) bytes(field string) []byte {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = corruptf("field %s claims %d bytes, %d left", field, n, len(d.b))
		return nil
	}
	v := append([]byte{}, d.b[:n]...)
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(field string) string { return string(d.bytes(field)) }

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
