package backend_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func TestPostgres_TemplateWithIntegerKeyAndJSONBValue(t *testing.T) {
	fx := newPostgresFixture(t)
	fx.exec(t, `CREATE TABLE accounts (id BIGINT PRIMARY KEY, doc JSONB NOT NULL)`)
	fx.exec(t, `INSERT INTO accounts VALUES (1, '{"plan": "pro"}')`)
	accounts := table(t, fx.db, backend.TableSpec{
		Namespace: "accounts",
		LoadSQL:   `SELECT doc FROM accounts WHERE id = $1`,
		UpsertSQL: `INSERT INTO accounts (id, doc) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`,
		DeleteSQL: `DELETE FROM accounts WHERE id = $1`,
	})
	mustLoad(t, accounts, "1", []byte(`{"plan": "pro"}`)) // jsonb text form
	mustStore(t, accounts, "2", []byte(`{"plan":"free"}`))
	mustLoad(t, accounts, "2", []byte(`{"plan": "free"}`))
	mustRemove(t, accounts, "2")
	mustNotFind(t, accounts, "2")
	err := accounts.Write(context.Background(), []strategy.Write{{Key: "not-a-number", Value: []byte(`{}`), Version: 1}})
	if !errors.Is(err, strategy.ErrRejected) {
		t.Fatalf("Write with a key that is not a bigint = %v, want ErrRejected", err)
	}
	err = accounts.Write(context.Background(), []strategy.Write{{Key: "3", Value: []byte(`{not json`), Version: 1}})
	if !errors.Is(err, strategy.ErrRejected) {
		t.Fatalf("Write of a value that is not JSON = %v, want ErrRejected", err)
	}
	t.Logf("rejected: %v", err)
}

func TestPostgres_CancelledLoadCancelsTheServerQuery(t *testing.T) {
	fx := newPostgresFixture(t)
	slow := table(t, fx.db, backend.TableSpec{Namespace: "slow", LoadSQL: fx.slowLoadSQL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := slow.Load(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load = %v, want context.DeadlineExceeded", err)
	}
	conn, err := pgx.Connect(context.Background(), fx.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(3 * time.Second); ; {
		var running int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()`).Scan(&running)
		if err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slow queries still running on the server after the Load was cancelled", running)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

func TestPostgres_ConcurrentOpensCreateGenericTableOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			db, err := backend.Open(context.Background(), backend.Config{Driver: backend.DriverPostgres, DSN: dsn, MaxConns: 2})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			db.Close()
		})
	}
	wg.Wait()
}

// A role that may not create tables (PostgreSQL 15 revokes CREATE on
// schema public) can still serve templated namespaces.
func TestPostgres_OpenWithoutCreatePrivilegeServesTemplates(t *testing.T) {
	fx := newPostgresFixture(t) // as postgres: creates ringcache_kv, then drop it again
	fx.exec(t, `DROP TABLE ringcache_kv`)
	fx.exec(t, usersDDL)
	fx.exec(t, `INSERT INTO users VALUES ('1', 'one')`)
	fx.exec(t, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ringcache_reader') THEN
			CREATE ROLE ringcache_reader LOGIN;
		END IF;
	END $$`)
	fx.exec(t, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	fx.exec(t, `GRANT SELECT ON users TO ringcache_reader`)
	t.Cleanup(func() { fx.exec(t, `DROP OWNED BY ringcache_reader`) })

	u, err := url.Parse(fx.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("ringcache_reader")
	db := openDB(t, backend.Config{Driver: backend.DriverPostgres, DSN: u.String()})
	mustLoad(t, table(t, db, backend.TableSpec{Namespace: "users", LoadSQL: usersSpec.LoadSQL}), "1", []byte("one"))
	if _, err := db.Table(backend.TableSpec{Namespace: "kv"}); !errors.Is(err, backend.ErrGenericTableUnavailable) {
		t.Fatalf("Table(generic) = %v, want ErrGenericTableUnavailable", err)
	}
}

func TestPostgres_LazyOpenSurvivesAnUnreachableServer(t *testing.T) {
	ctx := context.Background()
	dsn := "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	if _, err := backend.Open(ctx, backend.Config{Driver: backend.DriverPostgres, DSN: dsn}); err == nil {
		t.Fatal("a strict Open succeeded against a closed port")
	}
	db, err := backend.Open(ctx, backend.Config{Driver: backend.DriverPostgres, DSN: dsn, Lazy: true})
	if err != nil {
		t.Fatalf("lazy Open: %v", err)
	}
	defer db.Close()
	tbl, err := db.Table(backend.TableSpec{Namespace: "n"})
	if err != nil {
		t.Fatal(err)
	}
	err = tbl.Write(ctx, []strategy.Write{{Key: "k", Value: []byte("v"), Version: 1}})
	if err == nil || errors.Is(err, strategy.ErrRejected) {
		t.Fatalf("write to a down server: %v; want a transient (not rejected) error", err)
	}
	if _, _, err := tbl.Load(ctx, "k"); err == nil {
		t.Fatal("load from a down server succeeded")
	}
}
