package sim

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func nan() float64 { return math.NaN() }

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"1000":    {Entries: 1000},
		" 42 ":    {Entries: 42},
		"4096B":   {Bytes: 4096},
		"1KiB":    {Bytes: 1024},
		"16MiB":   {Bytes: 16 << 20},
		"16 MiB":  {Bytes: 16 << 20},
		"1.5GiB":  {Bytes: 3 << 29},
		"1MB":     {Bytes: 1000000},
		"2 gib":   {Bytes: 2 << 30},
		"100000B": {Bytes: 100000},
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0MiB", "-5", "-1MiB", "ten", "1.5", "12 apples"} {
		if got, err := ParseSize(in); !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseSize(%q) = %+v, %v; want ErrBadSize", in, got, err)
		}
	}
}

func TestParseSizes_RejectsMixedUnits(t *testing.T) {
	if _, err := ParseSizes([]string{"1000", "1MiB"}); !errors.Is(err, ErrBadSize) {
		t.Errorf("mixed units: err = %v, want ErrBadSize", err)
	}
	if _, err := ParseSizes(nil); !errors.Is(err, ErrBadSize) {
		t.Errorf("no sizes: err = %v, want ErrBadSize", err)
	}
	got, err := ParseSizes([]string{"1MiB", "64KiB"})
	if err != nil || !slices.Equal(got, []Size{{Bytes: 1 << 20}, {Bytes: 64 << 10}}) {
		t.Errorf("ParseSizes = %+v, %v", got, err)
	}
}

func TestLogSpace_Doublings(t *testing.T) {
	got, err := LogSpace(Size{Bytes: 1 << 20}, Size{Bytes: 1 << 30}, 11)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 11 {
		t.Fatalf("got %d sizes, want 11: %v", len(got), got)
	}
	for i, s := range got {
		if want := uint64(1) << (20 + i); s.Bytes != want || s.Entries != 0 {
			t.Errorf("size %d = %+v, want %d bytes", i, s, want)
		}
	}
}

func TestLogSpace_DropsDuplicatesAndChecksBounds(t *testing.T) {
	got, err := LogSpace(Size{Entries: 1}, Size{Entries: 4}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Size{{Entries: 1}, {Entries: 2}, {Entries: 3}, {Entries: 4}}; !slices.Equal(got, want) {
		t.Errorf("LogSpace(1, 4, 10) = %v, want %v", got, want)
	}
	for name, args := range map[string][2]Size{
		"mixed":    {{Entries: 1}, {Bytes: 10}},
		"inverted": {{Bytes: 10}, {Bytes: 1}},
		"zero":     {{}, {Bytes: 1}},
	} {
		if _, err := LogSpace(args[0], args[1], 3); !errors.Is(err, ErrBadSize) {
			t.Errorf("%s: err = %v, want ErrBadSize", name, err)
		}
	}
	if _, err := LogSpace(Size{Bytes: 1}, Size{Bytes: 2}, 0); !errors.Is(err, ErrBadSize) {
		t.Errorf("0 steps: err = %v, want ErrBadSize", err)
	}
}

func TestSize_MaxBytesAndString(t *testing.T) {
	if got := (Size{Entries: 3}).MaxBytes(100.5); got != 302 {
		t.Errorf("3 entries of 100.5 B = %d bytes, want 302 (rounded up)", got)
	}
	if got := (Size{Bytes: 77}).MaxBytes(100); got != 77 {
		t.Errorf("77 bytes = %d bytes", got)
	}
	if got := (Size{Bytes: 64 << 20}).String(); got != "64 MiB" {
		t.Errorf("String = %q, want 64 MiB", got)
	}
	if got := (Size{Entries: 1000}).String(); got != "1000 entries" {
		t.Errorf("String = %q, want 1000 entries", got)
	}
}
