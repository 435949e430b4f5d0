package backend_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/backend"
)

func TestConfig_ValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  backend.Config
		want string // substring of the error; "" = valid
	}{
		{"postgres", backend.Config{Driver: "postgres", DSN: "postgres://app@127.0.0.1/app"}, ""},
		{"sqlite", backend.Config{Driver: "sqlite", Path: "data/app.db", MaxConns: 2}, ""},
		{"sqlite extra params", backend.Config{Driver: "sqlite", Path: "data/app.db?_pragma=cache_size(-2000)"}, ""},
		{"unknown driver", backend.Config{Driver: "mysql"}, `driver: "mysql" is not supported (use postgres or sqlite)`},
		{"no driver", backend.Config{}, "driver: is required (postgres or sqlite)"},
		{"postgres without dsn", backend.Config{Driver: "postgres"}, "dsn: is required for driver postgres"},
		{"sqlite without path", backend.Config{Driver: "sqlite"}, "path: is required for driver sqlite"},
		{"sqlite memory", backend.Config{Driver: "sqlite", Path: ":memory:"}, "path: must be a file path"},
		{"sqlite uri", backend.Config{Driver: "sqlite", Path: "file:app.db"}, "path: must be a file path"},
		{"dsn on sqlite", backend.Config{Driver: "sqlite", Path: "a.db", DSN: "x"}, "dsn: is not used by driver sqlite"},
		{"path on postgres", backend.Config{Driver: "postgres", DSN: "x", Path: "a.db"}, "path: is not used by driver postgres"},
		{"negative max_conns", backend.Config{Driver: "sqlite", Path: "a.db", MaxConns: -1}, "max_conns: must be between 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, backend.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an ErrInvalidConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestConfig_ValidateReportsEveryProblem(t *testing.T) {
	err := backend.Config{Driver: "postgres", Path: "a.db", MaxConns: -3}.Validate()
	for _, field := range []string{"dsn:", "path:", "max_conns:"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to mention %s", err, field)
		}
	}
}

func TestOpen_RejectsInvalidConfigBeforeConnecting(t *testing.T) {
	_, err := backend.Open(context.Background(), backend.Config{Driver: "mysql", DSN: "x"})
	if !errors.Is(err, backend.ErrInvalidConfig) {
		t.Fatalf("Open = %v, want ErrInvalidConfig", err)
	}
}

func TestTable_RejectsInvalidTemplates(t *testing.T) {
	db := openDB(t, backend.Config{Driver: "sqlite", Path: filepath.Join(t.TempDir(), "app.db")})
	for _, tc := range []struct {
		name string
		spec backend.TableSpec
		want string
	}{
		{"no namespace", backend.TableSpec{}, "namespace: is required"},
		{"load without key", backend.TableSpec{Namespace: "x", LoadSQL: "SELECT v FROM t"},
			`namespace "x": load_sql: must reference $1 (the key)`},
		{"load with value", backend.TableSpec{Namespace: "x", LoadSQL: "SELECT v FROM t WHERE k = $1 AND v = $2"},
			"load_sql: may only reference $1 (the key), found $2"},
		{"upsert without value", backend.TableSpec{Namespace: "x", UpsertSQL: "INSERT INTO t (k) VALUES ($1)"},
			"upsert_sql: must reference $2 (the value)"},
		{"upsert with $4", backend.TableSpec{Namespace: "x", UpsertSQL: "INSERT INTO t VALUES ($1, $2, $3, $4)"},
			"upsert_sql: may only reference $1 (the key), $2 (the value) and $3 (the version), found $4"},
		{"delete with $3", backend.TableSpec{Namespace: "x", DeleteSQL: "DELETE FROM t WHERE k = $1 AND v < $3"},
			"delete_sql: may only reference $1 (the key) and $2 (the version), found $3"},
		{"version without value", backend.TableSpec{Namespace: "x", UpsertSQL: "INSERT INTO t VALUES ($1, $3)"},
			"upsert_sql: must reference $2 (the value)"},
		{"$10 is not $1", backend.TableSpec{Namespace: "x", DeleteSQL: "DELETE FROM t WHERE k = $10"},
			"delete_sql: must reference $1 (the key)"},
		{"$1 in a literal does not count", backend.TableSpec{Namespace: "x", LoadSQL: "SELECT v FROM t WHERE k = '$1'"},
			"load_sql: must reference $1 (the key)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.Table(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, backend.ErrInvalidSpec) {
				t.Fatalf("Table() = %v, want an ErrInvalidSpec containing %q", err, tc.want)
			}
		})
	}
}
