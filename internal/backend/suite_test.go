package backend_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// The same behaviours run against both drivers. Each subtest gets a fresh
// database (a new SQLite file, a new PostgreSQL database).

func TestSQLite_Table(t *testing.T)   { runTableSuite(t, newSQLiteFixture) }
func TestPostgres_Table(t *testing.T) { runTableSuite(t, newPostgresFixture) }

func runTableSuite(t *testing.T, newFixture func(*testing.T) *fixture) {
	ctx := context.Background()
	generic := backend.TableSpec{Namespace: "sessions"}

	t.Run("GenericTableRoundTrip", func(t *testing.T) {
		kv := table(t, newFixture(t).db, generic)
		mustStore(t, kv, "k", []byte("v1"))
		mustLoad(t, kv, "k", []byte("v1"))
		mustStore(t, kv, "k", []byte("v2")) // upsert
		mustLoad(t, kv, "k", []byte("v2"))
		binary := []byte{0, 0xff, 0xfe, 'x', 0}
		mustStore(t, kv, "bin", binary)
		mustLoad(t, kv, "bin", binary)
	})

	t.Run("LoadMissingKeyIsNotFound", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, usersDDL)
		for _, spec := range []backend.TableSpec{generic, usersSpec} {
			mustNotFind(t, table(t, fx.db, spec), "nobody")
		}
	})

	t.Run("RemoveIsIdempotent", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, usersDDL)
		for _, spec := range []backend.TableSpec{generic, usersSpec} {
			kv := table(t, fx.db, spec)
			mustRemove(t, kv, "absent")
			mustStore(t, kv, "k", []byte("v"))
			mustRemove(t, kv, "k")
			mustRemove(t, kv, "k")
			mustNotFind(t, kv, "k")
		}
	})

	t.Run("GenericTableIsolatesNamespaces", func(t *testing.T) {
		fx := newFixture(t)
		a := table(t, fx.db, backend.TableSpec{Namespace: "a"})
		b := table(t, fx.db, backend.TableSpec{Namespace: "b"})
		mustStore(t, a, "k", []byte("from a"))
		mustNotFind(t, b, "k")
		mustStore(t, b, "k", []byte("from b"))
		mustRemove(t, a, "k")
		mustLoad(t, b, "k", []byte("from b"))
	})

	t.Run("EmptyAndNilValuesAreFound", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, usersDDL)
		for _, spec := range []backend.TableSpec{generic, usersSpec} {
			kv := table(t, fx.db, spec)
			mustStore(t, kv, "empty", []byte{})
			mustLoad(t, kv, "empty", []byte{})
			mustStore(t, kv, "nil", nil)
			mustLoad(t, kv, "nil", []byte{})
		}
	})

	t.Run("TemplateRoundTrip", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, usersDDL)
		fx.exec(t, `INSERT INTO users (id, profile) VALUES ('7', '{"id":"7"}')`) // written by the application
		users := table(t, fx.db, usersSpec)
		mustLoad(t, users, "7", []byte(`{"id":"7"}`))
		mustStore(t, users, "42", []byte(`{"id":"42","plan":"free"}`))
		mustStore(t, users, "42", []byte(`{"id":"42","plan":"pro"}`))
		mustLoad(t, users, "42", []byte(`{"id":"42","plan":"pro"}`))
		mustRemove(t, users, "42")
		mustNotFind(t, users, "42")
		mustLoad(t, users, "7", []byte(`{"id":"7"}`))
	})

	t.Run("TemplateNullValueIsNotFound", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, `CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT)`)
		fx.exec(t, `INSERT INTO notes (id, body) VALUES ('n', NULL)`)
		notes := table(t, fx.db, backend.TableSpec{Namespace: "notes", LoadSQL: `SELECT body FROM notes WHERE id = $1`})
		mustNotFind(t, notes, "n")
	})

	t.Run("LoadUsesFirstColumnOfFirstRow", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, usersDDL)
		fx.exec(t, `INSERT INTO users (id, profile) VALUES ('1', 'one'), ('2', 'two')`)
		kv := table(t, fx.db, backend.TableSpec{Namespace: "users",
			LoadSQL: `SELECT profile, id FROM users WHERE id >= $1 ORDER BY id`})
		mustLoad(t, kv, "1", []byte("one"))
	})

	t.Run("ReadOnlyTemplateRejectsWrites", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, usersDDL)
		ro := table(t, fx.db, backend.TableSpec{Namespace: "ro", LoadSQL: usersSpec.LoadSQL})
		mustNotFind(t, ro, "1")
		err := ro.Write(ctx, []strategy.Write{{Key: "1", Value: []byte("x"), Version: 1}})
		if !errors.Is(err, backend.ErrNoTemplate) || !errors.Is(err, strategy.ErrRejected) ||
			err.Error() != `namespace "ro": no upsert_sql configured` {
			t.Fatalf("upsert on read-only namespace: %v", err)
		}
		err = ro.Write(ctx, []strategy.Write{{Key: "1", Delete: true, Version: 2}})
		if !errors.Is(err, backend.ErrNoTemplate) || !errors.Is(err, strategy.ErrRejected) ||
			err.Error() != `namespace "ro": no delete_sql configured` {
			t.Fatalf("delete on read-only namespace: %v", err)
		}
		wo := table(t, fx.db, backend.TableSpec{Namespace: "wo", DeleteSQL: usersSpec.DeleteSQL})
		if _, _, err := wo.Load(ctx, "1"); !errors.Is(err, backend.ErrNoTemplate) {
			t.Fatalf("Load without load_sql: %v", err)
		}
	})

	t.Run("LoadWithCancelledContextReturnsContextError", func(t *testing.T) {
		kv := table(t, newFixture(t).db, generic)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := kv.Load(cctx, "k"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Load with cancelled context: err = %v, want context.Canceled", err)
		}
		err := kv.Write(cctx, []strategy.Write{{Key: "k", Value: []byte("v"), Version: 1}})
		if !errors.Is(err, context.Canceled) || errors.Is(err, strategy.ErrRejected) {
			t.Fatalf("Write with cancelled context: err = %v, want context.Canceled", err)
		}
	})

	t.Run("SlowLoadStopsAtDeadline", func(t *testing.T) {
		fx := newFixture(t)
		slow := table(t, fx.db, backend.TableSpec{Namespace: "slow", LoadSQL: fx.slowLoadSQL})
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err := slow.Load(dctx, "k")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow Load: err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("slow Load returned after %v, long past its deadline", d)
		}
		mustPing(t, fx.db) // the pool recovered
	})

	t.Run("CloseEndsUse", func(t *testing.T) {
		fx := newFixture(t)
		kv := table(t, fx.db, generic)
		mustPing(t, fx.db)
		if err := fx.db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := kv.Load(ctx, "k"); err == nil {
			t.Fatal("Load after Close succeeded")
		}
	})
}

// lastVersion gives the helpers increasing versions, so each write is newer
// than the ones before it.
var lastVersion atomic.Uint64

// mustStore writes value with a version newer than any before it.
func mustStore(t *testing.T, b strategy.Writer, key string, value []byte) {
	t.Helper()
	mustWrite(t, b, strategy.Write{Key: key, Value: value, Version: lastVersion.Add(1)})
}

// mustRemove deletes key with a version newer than any before it.
func mustRemove(t *testing.T, b strategy.Writer, key string) {
	t.Helper()
	mustWrite(t, b, strategy.Write{Key: key, Delete: true, Version: lastVersion.Add(1)})
}

func mustWrite(t *testing.T, b strategy.Writer, writes ...strategy.Write) {
	t.Helper()
	if err := b.Write(context.Background(), writes); err != nil {
		t.Fatalf("Write(%d writes, first key %q): %v", len(writes), writes[0].Key, err)
	}
}

func mustLoad(t *testing.T, b strategy.Loader, key string, want []byte) {
	t.Helper()
	got, found, err := b.Load(context.Background(), key)
	if err != nil || !found || !bytes.Equal(got, want) || got == nil {
		t.Fatalf("Load(%q) = %q, %v, %v; want %q, true, nil", key, got, found, err, want)
	}
}

func mustNotFind(t *testing.T, b strategy.Loader, key string) {
	t.Helper()
	got, found, err := b.Load(context.Background(), key)
	if err != nil || found || got != nil {
		t.Fatalf("Load(%q) = %q, %v, %v; want nil, false, nil", key, got, found, err)
	}
}

func mustPing(t *testing.T, db backend.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestPostgres_KeyWithANulByteIsRefusedUpFront(t *testing.T) {
	fx := newPostgresFixture(t)
	fx.exec(t, usersDDL)
	for _, spec := range []backend.TableSpec{{Namespace: "sessions"}, usersSpec} {
		kv := table(t, fx.db, spec)
		kc, ok := kv.(strategy.KeyValidator)
		if !ok {
			t.Fatalf("%s: the PostgreSQL backend does not check keys", spec.Namespace)
		}
		if err := kc.ValidateKey("a\x00b"); err == nil || strings.Contains(err.Error(), "a\x00b") {
			t.Fatalf("%s: ValidateKey of a key with a NUL byte = %v; want an error that does not quote the key", spec.Namespace, err)
		}
		if err := kc.ValidateKey("ordinary ключ"); err != nil {
			t.Fatalf("%s: ValidateKey of an ordinary key = %v", spec.Namespace, err)
		}
	}
}

func TestSQLite_KeyWithANulByteIsStored(t *testing.T) {
	kv := table(t, newSQLiteFixture(t).db, backend.TableSpec{Namespace: "sessions"})
	if err := kv.(strategy.KeyValidator).ValidateKey("a\x00b"); err != nil {
		t.Fatalf("ValidateKey: %v; SQLite stores such keys", err)
	}
	mustStore(t, kv, "a\x00b", []byte("1"))
	mustStore(t, kv, "a\x00c", []byte("2"))
	mustLoad(t, kv, "a\x00b", []byte("1"))
	mustNotFind(t, kv, "a")
}
