package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// sqliteParams are applied to every connection. _txlock makes explicit
// transactions take the write lock up front, the only safe way for several
// processes to write one file in transactions. WAL is not set here: it is a
// property of the file, set once by Open (see setupSQLite).
const sqliteParams = "_txlock=immediate"

// sqliteDefaultPragmas apply unless the parameters after '?' in Config.Path
// set the same pragma. (modernc runs _pragma parameters sorted by text, not
// in DSN order, so a second busy_timeout would not reliably override.)
var sqliteDefaultPragmas = []string{"busy_timeout(5000)", "synchronous(FULL)", "foreign_keys(1)"}

// sqliteSetupTimeout bounds Open's retries while other processes hold the
// file's locks, when ctx has no earlier deadline.
const sqliteSetupTimeout = 30 * time.Second

// sqliteGenericDDL creates the generic table under the name %s.
const sqliteGenericDDL = `CREATE TABLE IF NOT EXISTS %s (
	namespace  TEXT      NOT NULL,
	key        TEXT      NOT NULL,
	value      BLOB,
	version    BIGINT    NOT NULL DEFAULT 0,
	updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (namespace, key)
) WITHOUT ROWID`

// sqliteValueNotNull reports 1 when ringcache_kv is of the previous schema
// (value NOT NULL), 0 when it is current; no row when it is missing.
const sqliteValueNotNull = `SELECT "notnull" FROM pragma_table_info('ringcache_kv') WHERE name = 'value'`

// sqliteDB is a DB over one SQLite file through database/sql.
type sqliteDB struct {
	db *sql.DB
}

// sqliteDSN builds the driver DSN for a Config.Path value.
func sqliteDSN(path string) (file, dsn string) {
	file, extra, _ := strings.Cut(path, "?")
	set := make(map[string]bool)
	if q, err := url.ParseQuery(extra); err == nil {
		for _, p := range q["_pragma"] {
			set[pragmaName(p)] = true
		}
	}
	dsn = file + "?" + sqliteParams
	for _, p := range sqliteDefaultPragmas {
		if !set[pragmaName(p)] {
			dsn += "&_pragma=" + p
		}
	}
	if extra != "" {
		dsn += "&" + extra
	}
	return file, dsn
}

// pragmaName returns the name of a _pragma value: "busy_timeout" for
// "busy_timeout(50)" or "busy_timeout = 50".
func pragmaName(p string) string {
	name, _, _ := strings.Cut(p, "(")
	name, _, _ = strings.Cut(name, "=")
	return strings.ToLower(strings.TrimSpace(name))
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
		n = DefaultMaxConns()
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := setupSQLite(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", file, withCtx(ctx, err))
	}
	return &sqliteDB{db: db}, nil
}

// setupSQLite switches the file to WAL and creates or migrates the generic
// table. Converting a fresh file to WAL needs an exclusive lock, and when
// several processes open the file at once SQLite may report SQLITE_BUSY at
// once rather than wait (it would otherwise deadlock), so busy errors are
// retried with backoff.
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
			return ensureSQLiteGenericTable(ctx, db)
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

// ensureSQLiteGenericTable creates ringcache_kv, or migrates a table of the
// previous schema, whose value column is NOT NULL and so cannot hold
// tombstones. SQLite cannot drop a column constraint: the table is copied
// into a new one, dropped and replaced, in one BEGIN IMMEDIATE transaction
// that excludes every other writer of the file (so two processes opening it
// at once migrate it once).
func ensureSQLiteGenericTable(ctx context.Context, db *sql.DB) error {
	var notNull int
	err := db.QueryRowContext(ctx, sqliteValueNotNull).Scan(&notNull)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = db.ExecContext(ctx, fmt.Sprintf(sqliteGenericDDL, "ringcache_kv"))
		return err
	case err != nil || notNull == 0:
		return err
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, sqliteValueNotNull).Scan(&notNull); err != nil || notNull == 0 {
		return err // another process migrated it first
	}
	for _, q := range []string{
		`DROP TABLE IF EXISTS ringcache_kv_migrate`,
		fmt.Sprintf(sqliteGenericDDL, "ringcache_kv_migrate"),
		`INSERT INTO ringcache_kv_migrate (namespace, key, value, version, updated_at)
		 SELECT namespace, key, value, version, updated_at FROM ringcache_kv`,
		`DROP TABLE ringcache_kv`,
		`ALTER TABLE ringcache_kv_migrate RENAME TO ringcache_kv`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate ringcache_kv to nullable values: %w", err)
		}
	}
	return tx.Commit()
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

// redact keeps SQLite's errors as they are: they name the constraint,
// table and column ("CHECK constraint failed: body_len"), not the values,
// unless a trigger's RAISE message quotes them.
func (s *sqliteDB) redact(err error) error { return err }

// validateKey accepts every key: SQLite binds text with its length, NUL
// bytes included, and compares keys bytewise.
func (s *sqliteDB) validateKey(string) error { return nil }

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

// execBatch runs stmts in one BEGIN IMMEDIATE transaction (the _txlock
// parameter), each distinct query prepared once. Any failure rolls the
// transaction back.
func (s *sqliteDB) execBatch(ctx context.Context, stmts []stmt) (affected []int64, failed int, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, -1, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // closes the prepared statements
		}
	}()
	type prepared struct {
		query string
		stmt  *sql.Stmt
	}
	var cache []prepared // a batch has at most two distinct queries
	affected = make([]int64, len(stmts))
	for i, st := range stmts {
		var ps *sql.Stmt
		for _, p := range cache {
			if p.query == st.query {
				ps = p.stmt
				break
			}
		}
		if ps == nil {
			if ps, err = tx.PrepareContext(ctx, st.query); err != nil {
				return nil, i, err
			}
			cache = append(cache, prepared{st.query, ps})
		}
		res, err := ps.ExecContext(ctx, st.args...)
		if err == nil {
			affected[i], err = res.RowsAffected()
		}
		if err != nil {
			return nil, i, err
		}
	}
	if err = tx.Commit(); err != nil {
		return nil, -1, err
	}
	return affected, -1, nil
}

func (s *sqliteDB) queryRow(ctx context.Context, query string, args []any, dest ...any) (bool, error) {
	err := s.db.QueryRowContext(ctx, query, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// rejected reports a permanent refusal: SQLITE_CONSTRAINT (NOT NULL, CHECK,
// UNIQUE, foreign key, a trigger's RAISE(ABORT)), SQLITE_MISMATCH (a value
// of the wrong type for an INTEGER PRIMARY KEY or a STRICT table),
// SQLITE_TOOBIG, SQLITE_RANGE (a parameter the statement does not have)
// and SQLITE_ERROR, which SQLite returns for SQL errors (syntax, no such
// table or column). Busy, locked, I/O, full-disk, read-only and other errors
// are presumed transient.
func (s *sqliteDB) rejected(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG,
		sqlite3.SQLITE_RANGE, sqlite3.SQLITE_ERROR:
		return true
	}
	return false
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
