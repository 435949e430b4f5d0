package strategy_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func TestWarm_LoadsOnceAndAClientMissJoinsIt(t *testing.T) {
	bl := newBlockingLoad()
	e := newEnv(t, readThrough(), bl)
	warmed := make(chan strategy.WarmSource, 1)
	go func() {
		src, err := e.ns.Warm(context.Background(), "42")
		if err != nil {
			t.Errorf("Warm: %v", err)
		}
		warmed <- src
	}()
	recv(t, "the warm's load", bl.started)
	got := make(chan []byte, 1)
	go func() {
		v, _, err := e.ns.Get(context.Background(), "42")
		if err != nil {
			t.Errorf("Get: %v", err)
		}
		got <- v
	}()
	waitFor(t, "the client's miss to wait on the warm's load", func() bool { return e.ns.Stats().LoadsWaiting == 2 })
	bl.results <- loadReply{value: []byte("v42"), found: true}
	if src := recv(t, "the warm", warmed); src != strategy.WarmDatabase {
		t.Fatalf("Warm source = %v, want WarmDatabase", src)
	}
	if v := recv(t, "the Get", got); string(v) != "v42" {
		t.Fatalf("Get = %q, want v42", v)
	}
	st := e.ns.Stats()
	if st.Loads != 1 || st.Gets != 1 {
		t.Fatalf("loads %d, gets %d; want one load shared by the warm and the miss, and the warm not counted as a Get", st.Loads, st.Gets)
	}
	if src, err := e.ns.Warm(context.Background(), "42"); err != nil || src != strategy.WarmHeld {
		t.Fatalf("second Warm = %v, %v; want WarmHeld", src, err)
	}
	select {
	case k := <-bl.started:
		t.Fatalf("a held key was loaded again (%s)", k)
	default:
	}
}

func TestWarm_PendingWriteWinsAndAsideIsNotLoaded(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "7", []byte("pending"), 0); err != nil {
		t.Fatal(err)
	}
	e.store.Delete(strategy.StoreKey("users", "7")) // evicted; still pending in the journal
	if src, err := e.ns.Warm(bg, "7"); err != nil || src != strategy.WarmPending {
		t.Fatalf("Warm of a pending key = %v, %v; want WarmPending", src, err)
	}
	if v, _, _ := e.ns.Get(bg, "7"); string(v) != "pending" {
		t.Fatalf("Get after Warm = %q, want the pending write", v)
	}
	if n := e.ns.Stats().Loads; n != 0 {
		t.Fatalf("the database was read %d times for a key with a pending write", n)
	}
	aside := newEnv(t, strategy.Policy{Name: "sessions", TTL: time.Hour}, nil)
	if src, err := aside.ns.Warm(bg, "x"); err != nil || src != strategy.WarmNotLoaded {
		t.Fatalf("Warm in a cache-aside namespace = %v, %v; want WarmNotLoaded", src, err)
	}
}
