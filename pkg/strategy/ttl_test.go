package strategy_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func TestTTL_ReportsRemainingLifetimeOnTheStoreClock(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	if err := e.ns.Set(bg, "k", []byte("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(4 * time.Second)
	ttl, found, err := e.ns.TTL(bg, "k")
	if err != nil || !found || ttl <= 5*time.Second || ttl > 6*time.Second {
		t.Fatalf("TTL = %v, %v, %v; want about 6s", ttl, found, err)
	}
	if _, found, _ := e.ns.TTL(bg, "missing"); found {
		t.Fatal("TTL of a missing key reports it found")
	}
}

func TestExpire_ChangesTheLifetimeAndPersistRemovesIt(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	if err := e.ns.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	v, found, err := e.ns.Expire(bg, "k", 2*time.Second)
	if err != nil || !found || string(v) != "v" {
		t.Fatalf("Expire = %q, %v, %v", v, found, err)
	}
	if ttl, _, _ := e.ns.TTL(bg, "k"); ttl > 2*time.Second {
		t.Fatalf("TTL after Expire 2s = %v", ttl)
	}
	if _, found, _ := e.ns.Expire(bg, "k", 0); !found {
		t.Fatal("persist did not find the key")
	}
	if ttl, found, _ := e.ns.TTL(bg, "k"); !found || ttl != 0 {
		t.Fatalf("TTL after persist = %v, %v; want 0 (no expiry), true", ttl, found)
	}
	if _, found, _ := e.ns.Expire(bg, "k", time.Second); !found {
		t.Fatal("Expire did not find the key")
	}
	e.clock.Advance(2 * time.Second)
	if _, found := mustGet(t, e.ns, "k"); found {
		t.Fatal("the key outlived the lifetime Expire gave it")
	}
	if _, found, _ := e.ns.Expire(bg, "missing", time.Second); found {
		t.Fatal("Expire of a missing key reports it found")
	}
}

func TestExpire_LoadsAMissInAReadThroughNamespace(t *testing.T) {
	l := valueLoader()
	e := newEnv(t, readThrough(), l)
	v, found, err := e.ns.Expire(bg, "k", time.Minute)
	if err != nil || !found || string(v) != "value-of-k" {
		t.Fatalf("Expire = %q, %v, %v", v, found, err)
	}
	if ttl, _, _ := e.ns.TTL(bg, "k"); ttl > time.Minute || ttl < 59*time.Second {
		t.Fatalf("TTL = %v, want about 1m", ttl)
	}
	if l.calls.Load() != 1 {
		t.Fatalf("%d loads, want 1", l.calls.Load())
	}
}

func TestSetIf_NXAndXX(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	old, found, err := e.ns.SetIf(bg, "k", []byte("a"), 0, strategy.SetOptions{XX: true})
	if err != nil || found || old != nil {
		t.Fatalf("XX on a missing key = %q, %v, %v", old, found, err)
	}
	if _, found := mustGet(t, e.ns, "k"); found {
		t.Fatal("XX set a missing key")
	}
	if _, found, _ := e.ns.SetIf(bg, "k", []byte("a"), 0, strategy.SetOptions{NX: true}); found {
		t.Fatal("NX on a missing key saw it")
	}
	old, found, _ = e.ns.SetIf(bg, "k", []byte("b"), 0, strategy.SetOptions{NX: true})
	if !found || string(old) != "a" {
		t.Fatalf("NX on an existing key = %q, %v", old, found)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "a" {
		t.Fatalf("NX overwrote: %q", v)
	}
	old, found, _ = e.ns.SetIf(bg, "k", []byte("c"), 0, strategy.SetOptions{XX: true})
	if !found || string(old) != "a" {
		t.Fatalf("XX returned %q, %v", old, found)
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "c" {
		t.Fatalf("XX did not set: %q", v)
	}
	if _, _, err := e.ns.SetIf(bg, "k", nil, 0, strategy.SetOptions{NX: true, XX: true}); !errors.Is(err, strategy.ErrInvalidArgument) {
		t.Fatalf("NX and XX: %v", err)
	}
}

// Many concurrent SET NX of one key: exactly one applies.
func TestSetIf_ConcurrentNXAppliesOnce(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteThrough, Read: strategy.ReadThrough, TTL: time.Hour}, journal.Options{})
	var wg sync.WaitGroup
	var applied atomic.Int32
	for range 32 {
		wg.Go(func() {
			if _, found, err := e.ns.SetIf(bg, "lock", []byte("x"), 0, strategy.SetOptions{NX: true}); err == nil && !found {
				applied.Add(1)
			}
		})
	}
	wg.Wait()
	if applied.Load() != 1 {
		t.Fatalf("%d NX sets applied, want 1", applied.Load())
	}
}

func TestSetIf_KeepTTL(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	if err := e.ns.Set(bg, "k", []byte("a"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(4 * time.Second)
	if _, _, err := e.ns.SetIf(bg, "k", []byte("b"), 0, strategy.SetOptions{KeepTTL: true}); err != nil {
		t.Fatal(err)
	}
	if ttl, _, _ := e.ns.TTL(bg, "k"); ttl > 6*time.Second || ttl < 5*time.Second {
		t.Fatalf("TTL after KEEPTTL = %v, want about 6s", ttl)
	}
}

// NX on a write-through namespace checks the database's row when memory
// has none.
func TestSetIf_NXSeesTheDatabaseInAReadThroughNamespace(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour}, journal.Options{})
	if err := e.db.Write(bg, []strategy.Write{{Key: "k", Value: []byte("db"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	old, found, err := e.ns.SetIf(bg, "k", []byte("new"), 0, strategy.SetOptions{NX: true})
	if err != nil || !found || string(old) != "db" {
		t.Fatalf("NX = %q, %v, %v; want the database's value", old, found, err)
	}
	if r, _ := e.db.get("k"); string(r.value) != "db" {
		t.Fatalf("NX overwrote the database: %q", r.value)
	}
}

func TestGetDel_ReturnsAndDeletesThroughTheWriteMode(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	v, found, err := e.ns.GetDel(bg, "k", false)
	if err != nil || !found || string(v) != "v" {
		t.Fatalf("GetDel = %q, %v, %v", v, found, err)
	}
	if r, _ := e.db.get("k"); !r.deleted {
		t.Fatal("GetDel left the database row")
	}
	if _, found, _ := e.ns.GetDel(bg, "k", false); found {
		t.Fatal("second GetDel found the key")
	}
	// Memory only: a row only in the database is not counted but deleted.
	if err := e.db.Write(bg, []strategy.Write{{Key: "d", Value: []byte("db"), Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, found, err := e.ns.GetDel(bg, "d", true); err != nil || found {
		t.Fatalf("memory-only GetDel of a row not cached = %v, %v", found, err)
	}
	if r, _ := e.db.get("d"); !r.deleted {
		t.Fatal("memory-only GetDel did not delete the database row")
	}
}

func TestGetDel_MemoryOnlySeesAPendingWriteBehindWrite(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	e.store.Delete("users\x00k") // evicted from memory, still pending
	if _, found, err := e.ns.GetDel(bg, "k", true); err != nil || !found {
		t.Fatalf("GetDel = %v, %v; want the pending write found", found, err)
	}
	if _, found := mustGet(t, e.ns, "k"); found {
		t.Fatal("the key survived GetDel")
	}
}
