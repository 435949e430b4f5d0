package store

import (
	"testing"
	"time"
	"unsafe"

	"github.com/ringcache/ringcache/internal/testclock"
)

func TestStore_SetUnlessKeepsWhatKeepSaysAndReplacesTheRest(t *testing.T) {
	clk := testclock.New()
	s := newTestStore(t, 1<<20, clk)
	stale := func(old Entry) bool { return old.Epoch >= 2 } // keep entries of epoch 2 on
	if !s.SetUnless("k", Entry{Value: []byte("a"), Found: true, Epoch: 1}, stale) {
		t.Fatal("SetUnless on an empty key did not store")
	}
	if !s.SetUnless("k", Entry{Value: []byte("b"), Found: true, Epoch: 2}, stale) {
		t.Fatal("SetUnless did not replace an entry keep refused")
	}
	if s.SetUnless("k", Entry{Value: []byte("c"), Found: true, Epoch: 3}, stale) {
		t.Fatal("SetUnless replaced an entry keep kept")
	}
	if e, _ := s.Get("k"); string(e.Value) != "b" {
		t.Fatalf("Get(k) = %q, want b", e.Value)
	}
	s.Set("x", Entry{Value: []byte("old"), Found: true, Epoch: 9, TTL: time.Second})
	clk.Advance(2 * time.Second)
	if !s.SetUnless("x", Entry{Value: []byte("new"), Found: true}, stale) {
		t.Fatal("SetUnless did not store over an expired entry")
	}
}

// Cost and Epoch live in the padding after Found: growing the entry would
// cost every cached key memory that EntryOverhead does not count.
func TestEntry_StaysFortyEightBytes(t *testing.T) {
	if got := unsafe.Sizeof(Entry{}); got != 48 {
		t.Fatalf("sizeof(Entry) = %d, want 48", got)
	}
}
