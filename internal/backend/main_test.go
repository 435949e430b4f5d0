package backend_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is an open DB plus a way to run raw SQL next to it, as the
// application that owns the tables would.
type fixture struct {
	db  backend.DB
	dsn string // postgres only
	// exec runs SQL without parameters on a separate connection.
	exec func(t *testing.T, sql string)
	// count runs a query without parameters that returns one integer.
	count func(t *testing.T, sql string) int64
	// slowLoadSQL is a load template that runs until cancelled.
	slowLoadSQL string
}

func newSQLiteFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "app.db") // Open creates the directories
	db := openDB(t, backend.Config{Driver: backend.DriverSQLite, Path: path})
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &fixture{
		db: db,
		exec: func(t *testing.T, q string) {
			t.Helper()
			if _, err := raw.Exec(q); err != nil {
				t.Fatalf("exec %q: %v", q, err)
			}
		},
		count: func(t *testing.T, q string) int64 {
			t.Helper()
			var n int64
			if err := raw.QueryRow(q).Scan(&n); err != nil {
				t.Fatalf("query %q: %v", q, err)
			}
			return n
		},
		slowLoadSQL: `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT $1 FROM c WHERE x < 0`,
	}
}

func newPostgresFixture(t *testing.T) *fixture {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	db := openDB(t, backend.Config{Driver: backend.DriverPostgres, DSN: dsn, MaxConns: 4})
	return &fixture{
		db:  db,
		dsn: dsn,
		exec: func(t *testing.T, q string) {
			t.Helper()
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatalf("exec %q: %v", q, err)
			}
		},
		count: func(t *testing.T, q string) int64 {
			t.Helper()
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var n int64
			if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
				t.Fatalf("query %q: %v", q, err)
			}
			return n
		},
		slowLoadSQL: `SELECT $1::text FROM (SELECT pg_sleep(60)) AS s`,
	}
}

func openDB(t testing.TB, cfg backend.Config) backend.DB {
	t.Helper()
	db, err := backend.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func table(t testing.TB, db backend.DB, spec backend.TableSpec) strategy.Backend {
	t.Helper()
	b, err := db.Table(spec)
	if err != nil {
		t.Fatalf("Table(%+v): %v", spec, err)
	}
	return b
}

// usersSpec is the templated namespace from DESIGN.md.
var usersSpec = backend.TableSpec{
	Namespace: "users",
	LoadSQL:   `SELECT profile FROM users WHERE id = $1`,
	UpsertSQL: `INSERT INTO users (id, profile) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET profile = excluded.profile`,
	DeleteSQL: `DELETE FROM users WHERE id = $1`,
}

const usersDDL = `CREATE TABLE users (id TEXT PRIMARY KEY, profile TEXT NOT NULL)`
