package journal

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestJournal_FullByCount(t *testing.T) {
	j := openTest(t, Options{MaxPending: 3})
	for _, k := range []string{"a", "b", "c"} {
		mustAppend(t, j, set("ns", k, "v", 1))
	}
	err := j.Append(context.Background(), set("ns", "d", "v", 1))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("4th key: Append = %v; want ErrFull", err)
	}
	t.Logf("message: %v", err)
	if !strings.Contains(err.Error(), "3 pending writes (max_pending 3)") || !strings.Contains(err.Error(), "retry later") {
		t.Errorf("message %q does not say what is full and what to do", err)
	}
	if _, ok, _ := j.Pending("ns", "d"); ok {
		t.Fatal("a refused Append stored its record")
	}
	// At the bound, replacing an existing key still works.
	mustAppend(t, j, set("ns", "b", "v2", 2))
	if r := mustPending(t, j, "ns", "b"); string(r.Value) != "v2" {
		t.Errorf("b = %q", r.Value)
	}
	// Acking frees room.
	a := mustPending(t, j, "ns", "a")
	if err := j.Ack([]Record{a}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, set("ns", "d", "v", 1))
	if s := mustStats(t, j); s.Pending != 3 || s.Appends != 5 || s.MaxPending != 3 || s.MaxBytes != DefaultMaxBytes {
		t.Errorf("Stats = %+v", s)
	}
}

func TestJournal_FullByBytes(t *testing.T) {
	// Each record counts namespace+key+value: "ns"+"a"+7 bytes = 10.
	j := openTest(t, Options{MaxBytes: 25})
	mustAppend(t, j, set("ns", "a", "1234567", 1))
	mustAppend(t, j, set("ns", "b", "1234567", 1))
	err := j.Append(context.Background(), set("ns", "c", "1234567", 1))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "max_bytes 25") {
		t.Fatalf("30 bytes past a 25-byte bound: Append = %v; want ErrFull naming max_bytes", err)
	}
	t.Logf("message: %v", err)
	// Replacing checks only the delta: +5 fits, +6 does not.
	mustAppend(t, j, set("ns", "a", "123456789012", 2))
	if err := j.Append(context.Background(), set("ns", "b", "1234567890123", 2)); !errors.Is(err, ErrFull) {
		t.Fatalf("growing b past the bound: Append = %v; want ErrFull", err)
	}
	mustAppend(t, j, set("ns", "b", "1", 3)) // shrinking always fits
	if s := mustStats(t, j); s.PendingBytes != 15+4 || s.Pending != 2 {
		t.Errorf("Stats = %+v; want 2 pending, 19 bytes", s)
	}
}

func TestJournal_CountersSurviveReopen(t *testing.T) {
	j := openTest(t, Options{MaxPending: 2})
	mustAppend(t, j, set("ns", "a", "xx", 1))
	mustAppend(t, j, set("ns", "b", "yyy", 1))
	path := j.Path()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openAt(t, path, Options{MaxPending: 2})
	if s := mustStats(t, j); s.Pending != 2 || s.PendingBytes != 5+6 {
		t.Errorf("after reopen Stats = %+v", s)
	}
	if err := j.Append(context.Background(), set("ns", "c", "z", 1)); !errors.Is(err, ErrFull) {
		t.Errorf("after reopen, 3rd key: Append = %v; want ErrFull", err)
	}
}
