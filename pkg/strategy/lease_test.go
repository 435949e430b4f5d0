package strategy_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/strategy"
)

func TestLease_OneCallerLoadsTheOthersWait(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	var tokens, waits atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r, err := e.ns.Lease(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			switch {
			case r.Token != 0:
				tokens.Add(1)
			case r.Wait:
				waits.Add(1)
			}
		})
	}
	wg.Wait()
	if tokens.Load() != 1 || waits.Load() != 49 {
		t.Fatalf("%d tokens and %d waits for 50 concurrent misses; want 1 and 49", tokens.Load(), waits.Load())
	}
}

func TestLease_HolderSetsAndOthersThenHit(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
	r, _ := e.ns.Lease(context.Background(), "k")
	if err := e.ns.SetLeased(context.Background(), "k", []byte("loaded"), 0, r.Token); err != nil {
		t.Fatal(err)
	}
	got, err := e.ns.Lease(context.Background(), "k")
	if err != nil || !got.Found || string(got.Value) != "loaded" || got.Token != 0 {
		t.Fatalf("Lease after the leased Set = %+v, %v", got, err)
	}
	// A token is spent once.
	if err := e.ns.SetLeased(context.Background(), "k", []byte("again"), 0, r.Token); !errors.Is(err, strategy.ErrLeaseInvalid) {
		t.Fatalf("second use of a token: %v", err)
	}
}

func TestLease_DeleteDuringLoadRejectsTheStaleSet(t *testing.T) {
	for name, write := range map[string]func(ns *strategy.Namespace) error{
		"delete": func(ns *strategy.Namespace) error { return ns.Delete(context.Background(), "k") },
		"set":    func(ns *strategy.Namespace) error { return ns.Set(context.Background(), "k", []byte("fresh"), 0) },
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, strategy.Policy{TTL: time.Hour}, nil)
			r, _ := e.ns.Lease(context.Background(), "k")
			if err := write(e.ns); err != nil { // the application changed the database meanwhile
				t.Fatal(err)
			}
			err := e.ns.SetLeased(context.Background(), "k", []byte("stale"), 0, r.Token)
			if !errors.Is(err, strategy.ErrLeaseInvalid) {
				t.Fatalf("stale leased Set: %v, want ErrLeaseInvalid", err)
			}
			if v, _ := mustGet(t, e.ns, "k"); string(v) == "stale" {
				t.Fatal("the stale value was stored")
			}
			if e.ns.Stats().LeaseRejected != 1 {
				t.Fatalf("stats %+v", e.ns.Stats())
			}
		})
	}
}

func TestLease_ExpiredLeaseIsGrantedAgain(t *testing.T) {
	e := newEnv(t, strategy.Policy{TTL: time.Hour, LeaseTTL: 20 * time.Millisecond}, nil)
	first, _ := e.ns.Lease(context.Background(), "k")
	waitFor(t, "the lease to expire", func() bool {
		r, _ := e.ns.Lease(context.Background(), "k")
		return r.Token != 0 && r.Token != first.Token
	})
	if err := e.ns.SetLeased(context.Background(), "k", []byte("late"), 0, first.Token); !errors.Is(err, strategy.ErrLeaseInvalid) {
		t.Fatalf("Set with an expired lease: %v", err)
	}
}

func TestLease_ReadThroughLoadsInsteadOfLeasing(t *testing.T) {
	l := valueLoader()
	e := newEnv(t, readThrough(), l)
	r, err := e.ns.Lease(context.Background(), "k")
	if err != nil || !r.Found || r.Token != 0 || r.Wait {
		t.Fatalf("Lease on read-through = %+v, %v", r, err)
	}
}
