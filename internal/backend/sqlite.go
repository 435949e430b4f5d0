package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// sqliteParams are applied to every connection, before any parameters that
// follow '?' in Config.Path. _txlock makes explicit transactions take the
// write lock up front, the only safe way for several processes to write one
// file in transactions. WAL is not set here: it is a property of the file,
// set once by Open (see setupSQLite).
const sqliteParams = "_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)" +
	"&_pragma=foreign_keys(1)&_txlock=immediate"

// sqliteSetupTimeout bounds Open's retries while other processes hold the
// file's locks, when ctx has no earlier deadline.
const sqliteSetupTimeout = 30 * time.Second

const sqliteGenericDDL = `CREATE TABLE IF NOT EXISTS ringcache_kv (
	namespace  TEXT      NOT NULL,
	key        TEXT      NOT NULL,
	value      BLOB      NOT NULL,
	version    BIGINT    NOT NULL DEFAULT 0,
	updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (namespace, key)
) WITHOUT ROWID`

// sqliteDB is a DB over one SQLite file through database/sql.
type sqliteDB struct {
	db *sql.DB
}

// sqliteDSN builds the driver DSN for a Config.Path value.
func sqliteDSN(path string) (file, dsn string) {
	file, extra, _ := strings.Cut(path, "?")
	dsn = file + "?" + sqliteParams
	if extra != "" {
		dsn += "&" + extra
	}
	return file, dsn
}

func openSQLite(ctx context.Context, cfg Config) (*sqliteDB, error) {
	file, dsn := sqliteDSN(cfg.Path)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: path: %w", err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", file, err)
	}
	n := cfg.MaxConns
	if n == 0 {
		n = defaultMaxConns()
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := setupSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", file, withCtx(ctx, err))
	}
	return &sqliteDB{db: db}, nil
}

// setupSQLite switches the file to WAL and creates the generic table.
// Converting a fresh file to WAL needs an exclusive lock, and when several
// processes open the file at once SQLite may report SQLITE_BUSY at once
// rather than wait (it would otherwise deadlock), so busy errors are retried
// with backoff.
func setupSQLite(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, sqliteSetupTimeout)
	defer cancel()
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		err := func() error {
			var mode string
			if err := db.QueryRowContext(ctx, `PRAGMA journal_mode=WAL`).Scan(&mode); err != nil {
				return err
			}
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("journal_mode is %q, not wal (is the file on a network file system?)", mode)
			}
			_, err := db.ExecContext(ctx, sqliteGenericDDL)
			return err
		}()
		if !isBusy(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still locked by another connection)", err)
		case <-time.After(wait):
		}
	}
}

// isBusy reports SQLITE_BUSY and SQLITE_LOCKED, extended codes included.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
}

func (s *sqliteDB) Table(spec TableSpec) (strategy.Backend, error) {
	return newTable(s, spec, nil)
}

func (s *sqliteDB) Ping(ctx context.Context) error {
	return withCtx(ctx, s.db.PingContext(ctx))
}

func (s *sqliteDB) Close() error { return s.db.Close() }

func (s *sqliteDB) rewrite(query string) string { return sqlitePlaceholders(query) }

// valueArg binds a valid UTF-8 value as TEXT and any other as BLOB. SQLite
// keeps the storage class it is given whatever the column's declared type,
// so this keeps a TEXT column (users.profile) readable text for the other
// programs that share the file, and an empty value is not read back as NULL.
func (s *sqliteDB) valueArg(value []byte) any {
	if utf8.Valid(value) {
		return string(value)
	}
	return value
}

func (s *sqliteDB) exec(ctx context.Context, query string, args []any) error {
	_, err := s.db.ExecContext(ctx, query, args...)
	return err
}

func (s *sqliteDB) queryFirst(ctx context.Context, query string, args []any) (v []byte, null, found bool, err error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, false, false, rows.Err()
	}
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, false, err
	}
	if len(cols) == 0 {
		return nil, false, false, fmt.Errorf("query returns no columns")
	}
	var first sql.Null[[]byte] // TEXT, BLOB and numbers convert; NULL leaves Valid false
	dst := make([]any, len(cols))
	dst[0] = &first
	for i := 1; i < len(dst); i++ {
		dst[i] = new(any)
	}
	if err := rows.Scan(dst...); err != nil {
		return nil, false, false, err
	}
	if err := rows.Close(); err != nil {
		return nil, false, false, err
	}
	if err := rows.Err(); err != nil {
		return nil, false, false, err
	}
	if !first.Valid {
		return nil, true, true, nil
	}
	if first.V == nil {
		first.V = []byte{}
	}
	return first.V, false, true, nil
}
