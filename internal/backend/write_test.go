package backend_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Versioned, batched writes (write-through and write-behind), on both
// drivers.

func TestSQLite_Write(t *testing.T)   { runWriteSuite(t, newSQLiteFixture) }
func TestPostgres_Write(t *testing.T) { runWriteSuite(t, newPostgresFixture) }

// itemsDDL is an application table whose CHECK refuses bodies over 8 bytes.
const itemsDDL = `CREATE TABLE items (
	id      TEXT PRIMARY KEY,
	body    TEXT NOT NULL CHECK (length(body) <= 8),
	version BIGINT NOT NULL)`

// itemsSpec binds the version in both write templates.
var itemsSpec = backend.TableSpec{
	Namespace: "items",
	LoadSQL:   `SELECT body FROM items WHERE id = $1`,
	UpsertSQL: `INSERT INTO items (id, body, version) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = excluded.version
WHERE items.version < excluded.version`,
	DeleteSQL: `DELETE FROM items WHERE id = $1 AND version < $2`,
}

func put(key, value string, version uint64) strategy.Write {
	return strategy.Write{Key: key, Value: []byte(value), Version: version}
}

func del(key string, version uint64) strategy.Write {
	return strategy.Write{Key: key, Delete: true, Version: version}
}

func runWriteSuite(t *testing.T, newFixture func(*testing.T) *fixture) {
	ctx := context.Background()
	generic := backend.TableSpec{Namespace: "sessions"}

	t.Run("BatchRoundTripInOrder", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, itemsDDL)
		for _, spec := range []backend.TableSpec{generic, itemsSpec} {
			kv := table(t, fx.db, spec)
			mustWrite(t, kv, put("a", "a1", 1), put("b", "b1", 2), put("a", "a2", 3),
				del("b", 4), put("c", "", 5), strategy.Write{Key: "d", Version: 6}) // nil value
			mustLoad(t, kv, "a", []byte("a2"))
			mustNotFind(t, kv, "b")
			mustLoad(t, kv, "c", []byte{})
			mustLoad(t, kv, "d", []byte{})
			if err := kv.Write(ctx, nil); err != nil {
				t.Fatalf("empty batch: %v", err)
			}
		}
	})

	t.Run("LowerVersionDoesNotOverwriteAndIsReportedStale", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, itemsDDL)
		for _, spec := range []backend.TableSpec{generic, itemsSpec} {
			kv := table(t, fx.db, spec)
			stored := func(v uint64) uint64 { // templates cannot say
				if spec.Namespace == generic.Namespace {
					return v
				}
				return 0
			}
			mustWrite(t, kv, put("k", "new", 10))
			mustStale(t, kv, []strategy.StaleWrite{{Index: 0, Version: 9, Stored: stored(10)}}, put("k", "old", 9))
			mustLoad(t, kv, "k", []byte("new"))
			if spec.Namespace == generic.Namespace {
				mustWrite(t, kv, put("k", "new", 10), put("k", "new", 10)) // a retried batch: applied
				// An equal version with another value: a concurrent write
				// stamped alike, which changed nothing.
				mustStale(t, kv, []strategy.StaleWrite{{Index: 1, Version: 10, Stored: 10}}, put("j", "j", 1), put("k", "same", 10))
				mustLoad(t, kv, "j", []byte("j")) // the rest of the batch is applied
			}
			mustLoad(t, kv, "k", []byte("new"))
			mustWrite(t, kv, put("k", "newer", 11))
			mustLoad(t, kv, "k", []byte("newer"))
		}
		if n := fx.count(t, `SELECT version FROM ringcache_kv WHERE namespace = 'sessions' AND key = 'k'`); n != 11 {
			t.Fatalf("stored version = %d, want 11", n)
		}
	})

	t.Run("DeleteLeavesATombstone", func(t *testing.T) {
		fx := newFixture(t)
		kv := table(t, fx.db, generic)
		mustWrite(t, kv, put("k", "v1", 1))
		mustWrite(t, kv, del("k", 3))
		// Older than the delete: no resurrection, and reported.
		mustStale(t, kv, []strategy.StaleWrite{{Index: 0, Version: 2, Stored: 3}}, put("k", "late", 2))
		mustNotFind(t, kv, "k")
		mustWrite(t, kv, del("k", 3)) // a retried delete
		mustStale(t, kv, []strategy.StaleWrite{{Index: 1, Version: 4, Stored: 5}}, del("absent", 5), put("absent", "older", 4))
		mustNotFind(t, kv, "absent")
		const tombstones = `SELECT count(*) FROM ringcache_kv WHERE value IS NULL`
		if n := fx.count(t, tombstones); n != 2 {
			t.Fatalf("%d tombstones, want 2 (k and absent)", n)
		}
		mustWrite(t, kv, put("k", "v4", 4)) // newer than the delete
		mustLoad(t, kv, "k", []byte("v4"))
		if n := fx.count(t, tombstones); n != 1 {
			t.Fatalf("%d tombstones, want 1", n)
		}
	})

	t.Run("VersionAheadOfTheWallClockIsReported", func(t *testing.T) {
		// The break of issue 13: a row stamped by a clock an hour ahead
		// made every later upsert match no row, silently.
		fx := newFixture(t)
		kv := table(t, fx.db, generic)
		ahead := hlc.FromTime(time.Now().Add(time.Hour))
		mustWrite(t, kv, put("k", "from the clock ahead", ahead))
		now := hlc.FromTime(time.Now())
		err := kv.Write(ctx, []strategy.Write{put("k", "later", now)})
		var stale *strategy.StaleVersionError
		if !errors.As(err, &stale) || !errors.Is(err, strategy.ErrStaleVersion) || stale.Writes[0].Stored != ahead {
			t.Fatalf("Write under a row of a version an hour ahead = %v; want a StaleVersionError carrying %d", err, ahead)
		}
		if strings.Contains(err.Error(), `"k"`) || strings.Contains(err.Error(), "later") {
			t.Fatalf("the error names the key or value: %v", err)
		}
		t.Logf("stale: %v", err)
	})

	t.Run("FailedBatchAppliesNothing", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, itemsDDL)
		items := table(t, fx.db, itemsSpec)
		mustWrite(t, items, put("a", "before", 1))
		batch := []strategy.Write{put("a", "after", 2), put("b", "b", 2), put("c", "far too long", 2), put("d", "d", 2)}
		err := items.Write(ctx, batch)
		if !errors.Is(err, strategy.ErrRejected) || !strings.Contains(err.Error(), `write 3 of 4 (upsert)`) {
			t.Fatalf("batch with a CHECK violation: %v, want ErrRejected naming write 3", err)
		}
		t.Logf("rejected: %v", err)
		mustLoad(t, items, "a", []byte("before"))
		mustNotFind(t, items, "b")
		mustNotFind(t, items, "d")
		// The caller isolates the poison write by retrying one at a time.
		for _, w := range batch {
			err := items.Write(ctx, []strategy.Write{w})
			if poison := w.Key == "c"; poison != errors.Is(err, strategy.ErrRejected) || !poison && err != nil {
				t.Fatalf("Write(%q) alone: %v", w.Key, err)
			}
		}
		mustLoad(t, items, "a", []byte("after"))
		mustLoad(t, items, "d", []byte("d"))

		// A NOT NULL violation in a table whose upsert leaves body out.
		noBody := table(t, fx.db, backend.TableSpec{Namespace: "nobody",
			UpsertSQL: `INSERT INTO items (id, version) VALUES ($1, length($2) + $3)`})
		if err := noBody.Write(ctx, []strategy.Write{put("z", "z", 1)}); !errors.Is(err, strategy.ErrRejected) {
			t.Fatalf("NOT NULL violation: %v, want ErrRejected", err)
		}
	})

	t.Run("VersionTooLargeIsRejected", func(t *testing.T) {
		kv := table(t, newFixture(t).db, generic)
		err := kv.Write(ctx, []strategy.Write{put("a", "a", 1), put("b", "b", math.MaxInt64+1)})
		if !errors.Is(err, strategy.ErrRejected) {
			t.Fatalf("version above MaxInt64: %v, want ErrRejected", err)
		}
		mustNotFind(t, kv, "a")
		mustWrite(t, kv, put("a", "a", math.MaxInt64))
		mustLoad(t, kv, "a", []byte("a"))
	})

	t.Run("TemplatesWithAndWithoutVersion", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, itemsDDL)
		versioned := table(t, fx.db, itemsSpec)
		mustStale(t, versioned, []strategy.StaleWrite{{Index: 1, Version: 4}}, put("k", "v5", 5), put("k", "v4", 4))
		mustLoad(t, versioned, "k", []byte("v5"))
		// Not newer than the row: kept, and reported (the key still loads).
		mustStale(t, versioned, []strategy.StaleWrite{{Index: 0, Version: 5}}, del("k", 5))
		mustLoad(t, versioned, "k", []byte("v5"))
		mustWrite(t, versioned, del("k", 6))
		mustNotFind(t, versioned, "k")
		mustWrite(t, versioned, del("k", 7)) // absent: nothing to report

		// Without $3 and $2 the templates are not version-protected: the
		// last write applied wins whatever its version.
		plain := table(t, fx.db, backend.TableSpec{Namespace: "plain",
			LoadSQL: itemsSpec.LoadSQL,
			UpsertSQL: `INSERT INTO items (id, body, version) VALUES ($1, $2, 0)
ON CONFLICT (id) DO UPDATE SET body = excluded.body`,
			DeleteSQL: `DELETE FROM items WHERE id = $1`})
		mustWrite(t, plain, put("p", "v5", 5), put("p", "v4", 4))
		mustLoad(t, plain, "p", []byte("v4"))
		mustWrite(t, plain, del("p", 1))
		mustNotFind(t, plain, "p")
	})

	t.Run("TemplateSQLErrorIsRejected", func(t *testing.T) {
		fx := newFixture(t)
		fx.exec(t, itemsDDL)
		for _, spec := range []backend.TableSpec{
			{Namespace: "typo", UpsertSQL: `INSERT INTO items (id, bdy, version) VALUES ($1, $2, $3)`},
			{Namespace: "notable", DeleteSQL: `DELETE FROM itemz WHERE id = $1`},
		} {
			kv := table(t, fx.db, spec)
			w := put("a", "a", 1)
			if spec.UpsertSQL == "" {
				w = del("a", 2)
			}
			err := kv.Write(ctx, []strategy.Write{w})
			if !errors.Is(err, strategy.ErrRejected) {
				t.Fatalf("%s: Write = %v, want ErrRejected", spec.Namespace, err)
			}
			t.Logf("%s: %v", spec.Namespace, err)
		}
	})
}

// mustStale writes a batch that must be applied except the writes in want,
// reported as changing nothing.
func mustStale(t *testing.T, b strategy.Writer, want []strategy.StaleWrite, writes ...strategy.Write) {
	t.Helper()
	err := b.Write(context.Background(), writes)
	var stale *strategy.StaleVersionError
	if !errors.As(err, &stale) || !errors.Is(err, strategy.ErrStaleVersion) {
		t.Fatalf("Write(%d writes) = %v; want a StaleVersionError", len(writes), err)
	}
	if fmt.Sprint(stale.Writes) != fmt.Sprint(want) {
		t.Fatalf("stale writes %+v, want %+v", stale.Writes, want)
	}
}
