package strategy_test

import (
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// A pending write-behind write that meets a newer row when it is flushed
// (another node acknowledged a later write of the key, on its side of a
// partition) is superseded: once flushed, what was cached from it is
// dropped, and the next read serves the newer row.
func TestWriteBehind_ASupersededWriteIsNotServedAfterItsFlush(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "mine" {
		t.Fatalf("Get = %q before the flush, want mine", v)
	}
	pending, ok, err := e.journal.Pending("users", "k")
	if err != nil || !ok {
		t.Fatalf("no pending write of k: %v", err)
	}
	e.db.put("k", row{value: []byte("theirs"), version: pending.Version + 1})
	f := newFlusher(e, func(c *journal.FlusherConfig) {
		c.Superseded = func(_, key string, v uint64) { e.ns.Superseded(key, v) }
	})
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if s := f.Stats(); s.Superseded != 1 {
		t.Fatalf("flusher stats %+v, want 1 superseded", s)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "theirs" {
		t.Fatalf("Get = %q after the superseded flush, want theirs (the database's newer row)", v)
	}
}

// Superseded keeps an entry of a newer version than the superseded write.
func TestNamespace_SupersededKeepsANewerEntry(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("newer"), 0); err != nil {
		t.Fatal(err)
	}
	pending, _, err := e.journal.Pending("users", "k")
	if err != nil {
		t.Fatal(err)
	}
	e.ns.Superseded("k", pending.Version-1)
	if _, ok := e.store.Get(strategy.StoreKey("users", "k")); !ok {
		t.Fatal("Superseded of an older version dropped the newer entry")
	}
	e.ns.Superseded("k", pending.Version)
	if _, ok := e.store.Get(strategy.StoreKey("users", "k")); ok {
		t.Fatal("Superseded of the entry's own version kept it")
	}
}
