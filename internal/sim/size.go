package sim

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/dustin/go-humanize"
)

// ErrBadSize reports a cache size that cannot be simulated.
var ErrBadSize = errors.New("bad cache size")

// Size is one cache size to simulate: either a byte bound (Bytes) or a
// number of entries (Entries), exactly one of them non-zero. A size in
// entries is turned into bytes with the trace's mean entry weight, so the
// store stays bounded by bytes as a node's is.
type Size struct {
	Bytes   uint64
	Entries uint64
}

// ParseSize parses "1000" (entries) or a byte size with a unit such as
// "512KiB", "16MiB", "1.5GB" or "4096B".
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Size{}, fmt.Errorf("%w: empty", ErrBadSize)
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return Size{}, fmt.Errorf("%w %q: want a positive number of entries or bytes with a unit (e.g. 16MiB)", ErrBadSize, s)
		}
		return Size{Entries: n}, nil
	}
	if strings.HasPrefix(s, "-") {
		return Size{}, fmt.Errorf("%w %q: must be positive", ErrBadSize, s)
	}
	if !strings.ContainsFunc(s, unicode.IsLetter) {
		return Size{}, fmt.Errorf("%w %q: a byte size needs a unit (e.g. 1.5MiB); a plain number counts entries", ErrBadSize, s)
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 {
		return Size{}, fmt.Errorf("%w %q: want a positive number of entries or bytes with a unit (e.g. 16MiB)", ErrBadSize, s)
	}
	return Size{Bytes: n}, nil
}

// ParseSizes parses a list of sizes (see ParseSize) that are all entries or
// all bytes.
func ParseSizes(list []string) ([]Size, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no sizes given", ErrBadSize)
	}
	sizes := make([]Size, len(list))
	for i, s := range list {
		sz, err := ParseSize(s)
		if err != nil {
			return nil, err
		}
		if i > 0 && sz.inEntries() != sizes[0].inEntries() {
			return nil, fmt.Errorf("%w: %q and %q mix entries and bytes; give all sizes in one unit", ErrBadSize, list[0], s)
		}
		sizes[i] = sz
	}
	return sizes, nil
}

// LogSpace returns steps sizes spaced evenly on a log scale from lo to hi,
// both included, in the unit of lo and hi. Sizes that round to the same
// integer are kept once.
func LogSpace(lo, hi Size, steps int) ([]Size, error) {
	switch {
	case lo.inEntries() != hi.inEntries():
		return nil, fmt.Errorf("%w: min %s and max %s mix entries and bytes", ErrBadSize, lo, hi)
	case lo.value() == 0:
		return nil, fmt.Errorf("%w: min must be positive", ErrBadSize)
	case lo.value() > hi.value():
		return nil, fmt.Errorf("%w: min %s is above max %s", ErrBadSize, lo, hi)
	case steps < 1:
		return nil, fmt.Errorf("%w: steps must be at least 1, got %d", ErrBadSize, steps)
	case steps == 1 || lo == hi:
		return []Size{lo}, nil
	}
	a, b := math.Log(float64(lo.value())), math.Log(float64(hi.value()))
	var sizes []Size
	for i := range steps {
		v := uint64(math.Round(math.Exp(a + (b-a)*float64(i)/float64(steps-1))))
		if i == steps-1 || v > hi.value() {
			v = hi.value()
		}
		if n := len(sizes); n > 0 && sizes[n-1].value() >= v {
			continue
		}
		sizes = append(sizes, lo.with(v))
	}
	return sizes, nil
}

func (s Size) inEntries() bool { return s.Entries != 0 }

func (s Size) value() uint64 {
	if s.inEntries() {
		return s.Entries
	}
	return s.Bytes
}

// with returns a size of value v in s's unit.
func (s Size) with(v uint64) Size {
	if s.inEntries() {
		return Size{Entries: v}
	}
	return Size{Bytes: v}
}

// Scale returns s times f, rounded, in s's unit and at least 1.
func (s Size) Scale(f float64) Size {
	v := math.Round(float64(s.value()) * f)
	if v < 1 {
		v = 1
	}
	return s.with(uint64(min(v, math.MaxUint64)))
}

// MaxBytes returns the store bound for s: Bytes, or Entries times
// meanEntryBytes rounded up.
func (s Size) MaxBytes(meanEntryBytes float64) uint64 {
	if !s.inEntries() {
		return s.Bytes
	}
	return uint64(math.Ceil(float64(s.Entries) * meanEntryBytes))
}

// String returns "1000 entries", "1 entry" or "16 MiB".
func (s Size) String() string {
	switch {
	case s.Entries == 1:
		return "1 entry"
	case s.inEntries():
		return strconv.FormatUint(s.Entries, 10) + " entries"
	}
	return humanize.IBytes(s.Bytes)
}

// sortSizes returns sizes sorted, rejecting an empty list, a mix of units
// and duplicates.
func sortSizes(sizes []Size) ([]Size, error) {
	if len(sizes) == 0 {
		return nil, fmt.Errorf("%w: no sizes given", ErrBadSize)
	}
	for _, s := range sizes {
		if s.value() == 0 || (s.Bytes != 0 && s.Entries != 0) {
			return nil, fmt.Errorf("%w: %+v must have exactly one of Bytes and Entries positive", ErrBadSize, s)
		}
		if s.inEntries() != sizes[0].inEntries() {
			return nil, fmt.Errorf("%w: sizes mix entries and bytes", ErrBadSize)
		}
	}
	sorted := slices.Clone(sizes)
	slices.SortFunc(sorted, func(a, b Size) int { return cmp.Compare(a.value(), b.value()) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("%w: %s is given twice", ErrBadSize, sorted[i])
		}
	}
	return sorted, nil
}
