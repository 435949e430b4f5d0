package strategy_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
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

// The write-behind form of the break: a row stamped an hour ahead made
// the flusher's upsert match no row, and the record was acked as written.
func TestFlusher_RecordLosingToAVersionAheadIsWrittenAgainPastIt(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	ahead := hlc.FromTime(time.Now().Add(time.Hour))
	e.db.put("k", row{value: []byte("old"), version: ahead})
	e.db.put("j", row{value: []byte("j-old"), version: 1})
	for k, v := range map[string]string{"k": "new", "j": "j-new"} {
		if err := e.ns.Set(bg, k, []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	clock := &hlc.Clock{}
	f := newFlusher(e, func(c *journal.FlusherConfig) { c.Clock = clock })
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.db.get("k"); string(r.value) != "new" || r.version <= ahead {
		t.Fatalf("database holds %q at %v after the flush of an acknowledged %q", r.value, hlc.Time(r.version), "new")
	}
	if r, _ := e.db.get("j"); string(r.value) != "j-new" {
		t.Fatalf("the other record of the batch: database holds %q", r.value)
	}
	if s := f.Stats(); s.Reversioned != 1 || s.Superseded != 0 || pending(t, e.journal) != 0 {
		t.Fatalf("stats %+v, %d pending; want 1 reversioned, none pending", s, pending(t, e.journal))
	}
	if v := clock.Now(); v <= ahead {
		t.Fatal("the flusher did not move the node's clock past the stored version")
	}
}

// A stored version within the clock bound may be a later write from the
// node that took the key over: the pending record must not overwrite it.
func TestFlusher_RecordLosingToAPlausiblyLaterWriteIsSuperseded(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
	later := hlc.FromTime(time.Now().Add(100 * time.Millisecond))
	e.db.put("k", row{value: []byte("theirs"), version: later})
	f := newFlusher(e, nil)
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	if r, _ := e.db.get("k"); string(r.value) != "theirs" {
		t.Fatalf("database holds %q; the later write of another node was overwritten", r.value)
	}
	if s := f.Stats(); s.Superseded != 1 || s.Reversioned != 0 || pending(t, e.journal) != 0 {
		t.Fatalf("stats %+v, %d pending; want 1 superseded", s, pending(t, e.journal))
	}
}

func TestFlusher_RecordThatKeepsLosingIsBuried(t *testing.T) {
	e := newWriteEnv(t, strategy.Policy{Write: strategy.WriteBehind, TTL: time.Hour}, journal.Options{})
	if err := e.ns.Set(bg, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	w := &staleWriter{stored: hlc.FromTime(time.Now().Add(time.Hour))} // a writer ever further ahead
	f := newFlusher(e, func(c *journal.FlusherConfig) {
		c.Writers = map[string]strategy.Writer{"users": w}
		c.MaxAttempts = 3
	})
	if err := f.Flush(bg); err != nil {
		t.Fatal(err)
	}
	dead, err := e.journal.DeadLetters(10)
	if err != nil || len(dead) != 1 || dead[0].Key != "k" {
		t.Fatalf("dead letters = %+v, %v; want the record that never got written", dead, err)
	}
	if pending(t, e.journal) != 0 || f.Stats().Flushed != 0 {
		t.Fatalf("a record the database never applied was acknowledged: %+v", f.Stats())
	}
}

// nulRefusingDB is a backend that, like PostgreSQL, cannot store a NUL byte
// in a key.
type nulRefusingDB struct{ *fakeDB }

func (nulRefusingDB) ValidateKey(key string) error {
	if strings.IndexByte(key, 0) >= 0 {
		return errors.New("key has a NUL byte")
	}
	return nil
}

func TestNamespace_KeyTheBackendCannotStoreIsInvalidArgument(t *testing.T) {
	for _, mode := range []strategy.WriteMode{strategy.WriteThrough, strategy.WriteBehind} {
		st, err := store.New(store.Config{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		db := nulRefusingDB{newFakeDB()}
		j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		ns, err := strategy.New(strategy.Policy{Name: "users", Read: strategy.ReadThrough, Write: mode},
			strategy.Deps{Store: st, Loader: db, Writer: db, Journal: j.AsQueue()})
		if err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() error{
			"Set":    func() error { return ns.Set(bg, "a\x00b", []byte("v"), 0) },
			"Delete": func() error { return ns.Delete(bg, "a\x00b") },
			"Get":    func() error { _, _, err := ns.Get(bg, "a\x00b"); return err },
		} {
			if err := call(); !errors.Is(err, strategy.ErrInvalidArgument) {
				t.Fatalf("mode %d: %s of a key the backend cannot store = %v, want ErrInvalidArgument", mode, name, err)
			}
		}
		if s, _ := j.Stats(); s.Pending != 0 || db.calls != 0 || ns.Stats().Loads != 0 {
			t.Fatalf("mode %d: the refused key reached the journal (%d pending) or the database (%d calls, %d loads)", mode, s.Pending, db.calls, ns.Stats().Loads)
		}
		if err := ns.Set(bg, "ab", []byte("v"), 0); err != nil {
			t.Fatalf("mode %d: an ordinary key: %v", mode, err)
		}
	}
}
