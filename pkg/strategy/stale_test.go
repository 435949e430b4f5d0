package strategy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// A row stamped by a clock that ran an hour ahead (before a restart, or on
// another node) must not swallow a later write-through Set.
func TestWriteThrough_WriteLosingToAVersionAheadIsRetriedPastIt(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteThrough, TTL: time.Hour}, journal.Options{})
	ahead := hlc.FromTime(time.Now().Add(time.Hour))
	e.db.put("k", row{value: []byte("old"), version: ahead})

	if err := e.ns.Set(bg, "k", []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	r, _ := e.db.get("k")
	if string(r.value) != "new" || r.version <= ahead {
		t.Fatalf("database holds %q at %v after an acknowledged Set of %q; want it past %v",
			r.value, hlc.Time(r.version), "new", hlc.Time(ahead))
	}
	if v, _ := mustGet(t, e.ns, "k"); string(v) != "new" {
		t.Fatalf("Get = %q, want new", v)
	}
	if err := e.ns.Delete(bg, "k"); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.db.get("k"); !r.deleted {
		t.Fatal("a Delete after the retried Set did not reach the database")
	}
	if got := e.ns.Stats().StaleRetries; got != 1 {
		t.Fatalf("StaleRetries = %d, want 1 (the clock moved past the stored version once)", got)
	}
}

// staleWriter reports every write stale, as a database where a concurrent
// writer keeps winning, or one that cannot say which version it holds.
type staleWriter struct {
	stored uint64
	calls  int
}

func (w *staleWriter) Write(_ context.Context, ws []strategy.Write) error {
	w.calls++
	return &strategy.StaleVersionError{Namespace: "users", Writes: []strategy.StaleWrite{{Version: ws[0].Version, Stored: w.stored}}}
}

func TestWriteThrough_AWriteThatChangesNothingIsNeverAcknowledged(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stored    uint64
		wantCalls int
	}{
		{"StaleTwice", hlc.FromTime(time.Now().Add(time.Hour)), 2},
		{"StoredVersionUnknown", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.New(store.Config{MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(st.Close)
			w := &staleWriter{stored: tc.stored}
			ns, err := strategy.New(strategy.Policy{Name: "users", Write: strategy.WriteThrough}, strategy.Deps{Store: st, Writer: w})
			if err != nil {
				t.Fatal(err)
			}
			err = ns.Set(bg, "k", []byte("v"), 0)
			if !errors.Is(err, strategy.ErrStaleVersion) {
				t.Fatalf("Set = %v, want ErrStaleVersion", err)
			}
			if w.calls != tc.wantCalls {
				t.Fatalf("%d database writes, want %d", w.calls, tc.wantCalls)
			}
			if _, ok := st.Get(strategy.StoreKey("users", "k")); ok {
				t.Fatal("a write the database did not apply was cached")
			}
		})
	}
}
