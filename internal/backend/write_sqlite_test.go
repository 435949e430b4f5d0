package backend_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// sqliteOldDDL is ringcache_kv as the previous schema created it.
const sqliteOldDDL = `CREATE TABLE ringcache_kv (
	namespace  TEXT      NOT NULL,
	key        TEXT      NOT NULL,
	value      BLOB      NOT NULL,
	version    BIGINT    NOT NULL DEFAULT 0,
	updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (namespace, key)
) WITHOUT ROWID`

func rawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func TestSQLite_OpenMigratesOldSchemaOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	raw := rawSQLite(t, path)
	for _, q := range []string{sqliteOldDDL,
		`INSERT INTO ringcache_kv (namespace, key, value, version) VALUES ('sessions', 'old', 'kept', 7), ('sessions', 'empty', x'', 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	dbs := make([]backend.DB, 3)
	var wg sync.WaitGroup
	for i := range dbs { // several processes upgrading at once
		wg.Go(func() {
			db, err := backend.Open(context.Background(), backend.Config{Driver: backend.DriverSQLite, Path: path})
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			dbs[i] = db
		})
	}
	wg.Wait()
	for _, db := range dbs {
		if db == nil {
			t.FailNow()
		}
		t.Cleanup(func() { db.Close() })
	}
	var notNull int
	if err := raw.QueryRow(`SELECT "notnull" FROM pragma_table_info('ringcache_kv') WHERE name = 'value'`).Scan(&notNull); err != nil || notNull != 0 {
		t.Fatalf("value notnull = %d, %v after Open; want 0", notNull, err)
	}
	kv := table(t, dbs[0], backend.TableSpec{Namespace: "sessions"})
	mustLoad(t, kv, "old", []byte("kept"))
	mustLoad(t, kv, "empty", []byte{})
	// The version survived the copy.
	mustStale(t, kv, []strategy.StaleWrite{{Index: 0, Version: 6, Stored: 7}}, put("old", "stale", 6))
	mustLoad(t, kv, "old", []byte("kept"))
	mustWrite(t, kv, del("old", 8)) // a tombstone: needs the NULL
	mustStale(t, kv, []strategy.StaleWrite{{Index: 0, Version: 7, Stored: 8}}, put("old", "resurrected", 7))
	mustNotFind(t, table(t, dbs[2], backend.TableSpec{Namespace: "sessions"}), "old")
	var tables int
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name LIKE 'ringcache_kv%'`).Scan(&tables); err != nil || tables != 1 {
		t.Fatalf("%d ringcache_kv tables after the migration (%v), want 1", tables, err)
	}
}

func TestSQLite_BusyIsTransient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	db := openDB(t, backend.Config{Driver: backend.DriverSQLite, Path: path + "?_pragma=busy_timeout(50)"})
	kv := table(t, db, backend.TableSpec{Namespace: "sessions"})
	mustWrite(t, kv, put("k", "v1", 1))

	ctx := context.Background()
	conn, err := rawSQLite(t, path).Conn(ctx) // another process holding the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	err = kv.Write(ctx, []strategy.Write{put("k", "v2", 2)})
	if err == nil || errors.Is(err, strategy.ErrRejected) {
		t.Fatalf("Write while the file is locked = %v, want a transient error (not ErrRejected)", err)
	}
	t.Logf("transient: %v", err)
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, kv, put("k", "v2", 2))
	mustLoad(t, kv, "k", []byte("v2"))
}

func TestSQLite_TypeMismatchIsRejected(t *testing.T) {
	fx := newSQLiteFixture(t)
	fx.exec(t, `CREATE TABLE nums (id INTEGER PRIMARY KEY, body TEXT) STRICT`)
	nums := table(t, fx.db, backend.TableSpec{Namespace: "nums",
		UpsertSQL: `INSERT INTO nums (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body`})
	mustWrite(t, nums, put("1", "one", 1))
	for _, w := range []strategy.Write{
		put("x", "not an integer key", 2),
		{Key: "2", Value: []byte{0xff, 0}, Version: 2}, // a BLOB into a STRICT TEXT column
	} {
		err := nums.Write(context.Background(), []strategy.Write{w})
		if !errors.Is(err, strategy.ErrRejected) {
			t.Fatalf("Write(%q) = %v, want ErrRejected", w.Key, err)
		}
		t.Logf("rejected: %v", err)
	}
}

func BenchmarkSQLite_Write500(b *testing.B) {
	db := openDB(b, backend.Config{Driver: backend.DriverSQLite, Path: filepath.Join(b.TempDir(), "bench.db")})
	benchmarkWrite(b, table(b, db, backend.TableSpec{Namespace: "bench"}), 500)
}

func BenchmarkSQLite_WriteOne(b *testing.B) {
	db := openDB(b, backend.Config{Driver: backend.DriverSQLite, Path: filepath.Join(b.TempDir(), "bench.db")})
	benchmarkWrite(b, table(b, db, backend.TableSpec{Namespace: "bench"}), 1)
}
