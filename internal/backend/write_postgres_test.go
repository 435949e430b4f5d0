package backend_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// postgresOldDDL is ringcache_kv as the previous schema created it.
const postgresOldDDL = `CREATE TABLE ringcache_kv (
	namespace  TEXT        NOT NULL,
	key        TEXT        NOT NULL,
	value      BYTEA       NOT NULL,
	version    BIGINT      NOT NULL DEFAULT 0,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (namespace, key))`

func TestPostgres_OpenMigratesOldSchemaOnce(t *testing.T) {
	fx := newPostgresFixture(t) // creates the current table: replace it by an old one
	fx.exec(t, `DROP TABLE ringcache_kv`)
	fx.exec(t, postgresOldDDL)
	fx.exec(t, `INSERT INTO ringcache_kv (namespace, key, value) VALUES ('sessions', 'old', 'kept')`)

	var wg sync.WaitGroup
	dbs := make([]backend.DB, 4)
	for i := range dbs { // several nodes upgrading at once
		wg.Go(func() {
			db, err := backend.Open(context.Background(), backend.Config{Driver: backend.DriverPostgres, DSN: fx.dsn, MaxConns: 2})
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
	if n := fx.count(t, `SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'ringcache_kv' AND column_name = 'value' AND is_nullable = 'YES'`); n != 1 {
		t.Fatal("ringcache_kv.value is still NOT NULL after Open")
	}
	kv := table(t, dbs[0], backend.TableSpec{Namespace: "sessions"})
	mustLoad(t, kv, "old", []byte("kept")) // version 0
	mustWrite(t, kv, del("old", 1))        // a tombstone: needs the NULL
	mustStale(t, kv, []strategy.StaleWrite{{Index: 0, Version: 1, Stored: 1}}, put("old", "resurrected", 1))
	mustNotFind(t, table(t, dbs[3], backend.TableSpec{Namespace: "sessions"}), "old")
}

func TestPostgres_ConnectionErrorIsTransient(t *testing.T) {
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skipf("needs a server of its own to stop; %s is set", pgtest.EnvDSN)
	}
	srv := pgtest.Start(t)
	db := openDB(t, backend.Config{Driver: backend.DriverPostgres, DSN: srv.NewDatabase(t), MaxConns: 2})
	kv := table(t, db, backend.TableSpec{Namespace: "sessions"})
	mustWrite(t, kv, put("k", "v", 1))
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := kv.Write(ctx, []strategy.Write{put("k", "v2", 2), put("j", "v", 2)})
	if err == nil || errors.Is(err, strategy.ErrRejected) {
		t.Fatalf("Write to a stopped server = %v, want a transient error (not ErrRejected)", err)
	}
	t.Logf("transient: %v", err)
}

func TestPostgres_TypeErrorsAreRejected(t *testing.T) {
	fx := newPostgresFixture(t)
	fx.exec(t, `CREATE TABLE counters (id BIGINT PRIMARY KEY, n INTEGER NOT NULL, version BIGINT NOT NULL)`)
	counters := table(t, fx.db, backend.TableSpec{Namespace: "counters",
		LoadSQL: `SELECT n::text FROM counters WHERE id = $1`,
		UpsertSQL: `INSERT INTO counters (id, n, version) VALUES ($1, convert_from($2, 'UTF8')::integer, $3)
ON CONFLICT (id) DO UPDATE SET n = excluded.n, version = excluded.version WHERE counters.version < excluded.version`})
	mustWrite(t, counters, put("1", "41", 1), put("1", "42", 2))
	mustLoad(t, counters, "1", []byte("42"))
	for _, w := range []strategy.Write{
		put("x", "1", 3),           // key is not a bigint
		put("2", "forty-two", 3),   // value is not an integer
		put("3", "99999999999", 3), // integer out of range
	} {
		err := counters.Write(context.Background(), []strategy.Write{w})
		if !errors.Is(err, strategy.ErrRejected) {
			t.Fatalf("Write(%q=%q) = %v, want ErrRejected", w.Key, w.Value, err)
		}
		t.Logf("rejected: %v", err)
	}

	// pgx cannot encode a version above 2^31-1 for an integer parameter:
	// the batch fails before it reaches the server, for good.
	fx.exec(t, `CREATE TABLE small (id TEXT PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL)`)
	small := table(t, fx.db, backend.TableSpec{Namespace: "small",
		UpsertSQL: `INSERT INTO small (id, body, version) VALUES ($1, $2, $3)`})
	mustWrite(t, small, put("a", "a", 1))
	err := small.Write(context.Background(), []strategy.Write{put("b", "b", 2), put("c", "c", 1<<40)})
	if !errors.Is(err, strategy.ErrRejected) || !strings.Contains(err.Error(), "write 2 of 2") {
		t.Fatalf("Write of a version too large for integer = %v, want ErrRejected naming write 2 of 2", err)
	}
	t.Logf("rejected: %v", err)
	mustPing(t, fx.db)
	mustWrite(t, small, put("b", "b", 2)) // the pool is still usable
}

// BenchmarkPostgres_Write500 is one write-behind flush: a batch of 500
// upserts of distinct keys in the generic table.
func BenchmarkPostgres_Write500(b *testing.B) {
	kv := table(b, openDB(b, backend.Config{Driver: backend.DriverPostgres, DSN: pgtest.NewDatabase(b)}),
		backend.TableSpec{Namespace: "bench"})
	benchmarkWrite(b, kv, 500)
}

// BenchmarkPostgres_WriteOne is one write-through Set: a single upsert in
// its own transaction, committed with synchronous_commit on.
func BenchmarkPostgres_WriteOne(b *testing.B) {
	kv := table(b, openDB(b, backend.Config{Driver: backend.DriverPostgres, DSN: pgtest.NewDatabase(b)}),
		backend.TableSpec{Namespace: "bench"})
	benchmarkWrite(b, kv, 1)
}

func benchmarkWrite(b *testing.B, kv strategy.Writer, n int) {
	ctx := context.Background()
	value := make([]byte, 256)
	batch := make([]strategy.Write, n)
	var version uint64
	for i := range batch {
		batch[i].Key = fmt.Sprintf("key-%04d", i)
		batch[i].Value = value
	}
	for b.Loop() {
		version++
		for i := range batch {
			batch[i].Version = version // each batch replaces the previous rows
		}
		if err := kv.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/write")
}

// Flush errors are logged; keys and values must never be. PostgreSQL quotes
// both in its messages and details.
func TestPostgres_ErrorsNameTheConditionNotTheKeyOrValue(t *testing.T) {
	fx := newPostgresFixture(t)
	fx.exec(t, `CREATE TABLE accounts (id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL)`)
	fx.exec(t, `INSERT INTO accounts VALUES ('other', 'secret-mail@example.com')`)
	accounts := table(t, fx.db, backend.TableSpec{Namespace: "accounts",
		LoadSQL:   `SELECT email FROM accounts WHERE id = $1::bigint::text`,
		UpsertSQL: `INSERT INTO accounts (id, email) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET email = excluded.email`})
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		want []string
		code string
	}{
		{"unique violation", accounts.Write(ctx, []strategy.Write{put("secret-key", "secret-mail@example.com", 1)}),
			[]string{"duplicate key value violates unique constraint", `constraint "accounts_email_key"`, "SQLSTATE 23505"}, "23505"},
		{"bad input syntax", func() error { _, _, err := accounts.Load(ctx, "secret-key"); return err }(),
			[]string{"invalid input syntax for type bigint", "SQLSTATE 22P02"}, "22P02"},
	}
	for _, tc := range cases {
		if tc.err == nil {
			t.Fatalf("%s: no error", tc.name)
		}
		msg := tc.err.Error()
		t.Logf("%s: %s", tc.name, msg)
		if strings.Contains(msg, "secret") {
			t.Errorf("%s: the error quotes the key or value: %s", tc.name, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: the error lacks %q: %s", tc.name, w, msg)
			}
		}
		var pgErr *pgconn.PgError
		if !errors.As(tc.err, &pgErr) || pgErr.Code != tc.code {
			t.Errorf("%s: errors.As finds no PgError of code %s in %v", tc.name, tc.code, tc.err)
		}
	}
}
