package backend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringcache/ringcache/pkg/strategy"
)

const postgresGenericDDL = `CREATE TABLE IF NOT EXISTS ringcache_kv (
	namespace  TEXT        NOT NULL,
	key        TEXT        NOT NULL,
	value      BYTEA,
	version    BIGINT      NOT NULL DEFAULT 0,
	updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (namespace, key)
)`

// ddlLockKey serialises concurrent CREATE TABLE IF NOT EXISTS from several
// nodes, which PostgreSQL does not make atomic ("ringcac" in ASCII).
const ddlLockKey int64 = 0x72696e67636163

// cancelGrace bounds how long a cancelled call waits for the server to
// acknowledge the cancel request before the connection is dropped.
const cancelGrace = 500 * time.Millisecond

// postgresDB is a DB over a pgx connection pool. pgx prepares and caches
// each statement per connection, so templates are parsed once.
type postgresDB struct {
	pool       *pgxpool.Pool
	genericErr error // why ringcache_kv is unavailable, if it is

	// ready is set once ringcache_kv has been checked (at Open, or at first
	// use when Open was lazy and the server was down).
	ready  atomic.Bool
	initMu sync.Mutex
}

func openPostgres(ctx context.Context, cfg Config) (*postgresDB, error) {
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, &fieldError{kind: ErrInvalidConfig, field: "dsn", msg: err.Error()}
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = int32(cfg.MaxConns)
	}
	// On cancellation, ask the server to cancel the query (pgx's default
	// only drops the connection, leaving a slow query running on the
	// server), and drop the connection if it has not answered in time.
	pc.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelGrace}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", withCtx(ctx, err))
	}
	db := &postgresDB{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		if cfg.Lazy {
			return db, nil // connects and prepares on first use
		}
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", withCtx(ctx, err))
	}
	if err := db.init(ctx); err != nil {
		pool.Close()
		return nil, withCtx(ctx, err)
	}
	return db, nil
}

// init checks (and creates or migrates) ringcache_kv once.
func (db *postgresDB) init(ctx context.Context) error {
	if db.ready.Load() {
		return nil
	}
	db.initMu.Lock()
	defer db.initMu.Unlock()
	if db.ready.Load() {
		return nil
	}
	if err := db.ensureGenericTable(ctx); err != nil {
		return fmt.Errorf("postgres: create ringcache_kv: %w", err)
	}
	db.ready.Store(true)
	return nil
}

// ensureGenericTable creates ringcache_kv when it is missing and migrates a
// table of the previous schema (value NOT NULL, which cannot hold
// tombstones). Both steps run under an advisory lock, so several nodes may
// open the database at once; a table that is already current costs one
// query. When the role may not create or alter it (no CREATE on the schema,
// not the table's owner, a read-only standby), Open still succeeds so
// templated namespaces work; the reason is kept and reported by Table for
// namespaces that need the generic table.
func (db *postgresDB) ensureGenericTable(ctx context.Context) error {
	const current = `SELECT COALESCE((SELECT NOT attnotnull FROM pg_attribute
	WHERE attrelid = to_regclass('ringcache_kv') AND attname = 'value' AND NOT attisdropped), false)`
	var ok bool
	if err := db.pool.QueryRow(ctx, current).Scan(&ok); err != nil {
		return err
	}
	if ok {
		return nil
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, ddlLockKey); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, current).Scan(&ok); err != nil || ok {
			return err // another node got here first
		}
		if _, err := tx.Exec(ctx, postgresGenericDDL); err != nil {
			return err
		}
		// A table of the previous schema: allow tombstones.
		_, err := tx.Exec(ctx, `ALTER TABLE ringcache_kv ALTER COLUMN value DROP NOT NULL`)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42501" || pgErr.Code == "25006") {
		db.genericErr = err // insufficient_privilege, read_only_sql_transaction
		return nil
	}
	return err
}

func (db *postgresDB) Table(spec TableSpec) (strategy.Backend, error) {
	return newTable(db, spec, db.genericErr)
}

func (db *postgresDB) Ping(ctx context.Context) error {
	return withCtx(ctx, db.pool.Ping(ctx))
}

func (db *postgresDB) Close() error {
	db.pool.Close()
	return nil
}

func (db *postgresDB) rewrite(query string) string { return query }

// validateKey refuses a NUL byte: keys are sent as text, and PostgreSQL's
// text cannot hold one (SQLSTATE 22021).
func (db *postgresDB) validateKey(key string) error {
	if i := strings.IndexByte(key, 0); i >= 0 {
		return fmt.Errorf("key has a NUL byte at offset %d, which PostgreSQL cannot store in text", i)
	}
	return nil
}

// valueArg binds values as []byte; pgx encodes them for bytea, text and
// json(b) parameters alike.
func (db *postgresDB) valueArg(value []byte) any { return value }

// execBatch sends stmts as one pgx.Batch: one round trip once the
// statements are prepared on the connection. pgx ends a batch with a single
// Sync, so PostgreSQL runs it as one implicit transaction: the first error
// aborts it and nothing of the batch is applied.
func (db *postgresDB) execBatch(ctx context.Context, stmts []stmt) ([]int64, int, error) {
	if err := db.init(ctx); err != nil {
		return nil, 0, withCtx(ctx, err)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, -1, err
	}
	defer conn.Release()
	sds, i, err := prepare(ctx, conn.Conn(), stmts)
	if err != nil {
		return nil, i, err
	}
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(stmts))}
	for _, s := range stmts {
		b.Queue(s.query, s.args...)
	}
	br := conn.SendBatch(ctx, b)
	affected := make([]int64, len(stmts))
	for i := range stmts {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			// Only a statement's own error names it; a failure of the
			// connection is reported by the first Exec whatever the
			// statement.
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				return nil, i, err
			}
			var pre pgx.ErrPreprocessingBatch
			if errors.As(err, &pre) {
				if i, enc := unencodable(conn.Conn(), sds, stmts); enc != nil {
					return nil, i, enc // nothing was sent
				}
			}
			return nil, -1, err
		}
		affected[i] = tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return nil, -1, err
	}
	return affected, -1, nil
}

func (db *postgresDB) queryRow(ctx context.Context, query string, args []any, dest ...any) (bool, error) {
	err := db.pool.QueryRow(ctx, query, args...).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// rejected reports a permanent refusal: SQLSTATE classes 22 (data
// exception), 23 (integrity constraint violation), 42 (syntax error or
// access rule violation) and 54 (program limit exceeded: an index row or
// value too large), or an argument pgx cannot encode for the parameter's
// type. Everything else is presumed transient.
func (db *postgresDB) rejected(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "22", "23", "42", "54":
			return true
		}
		return false
	}
	var enc *encodeError
	return errors.As(err, &enc)
}

// redact returns err with a message that carries no value: PostgreSQL's
// message loses what follows its first colon ("invalid input syntax for
// type bigint: \"abc\"") and every quoted word that is not the name of the
// constraint, table, column or type its fields report; the detail ("Key
// (id)=(42) already exists.") is left out. An argument pgx could not encode
// (its message quotes the value) is named by its position only.
func (db *postgresDB) redact(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := redactMessage(pgErr)
		var b strings.Builder
		b.WriteString(pgErr.Severity)
		b.WriteString(": ")
		b.WriteString(msg)
		for _, f := range []struct{ name, v string }{{"constraint", pgErr.ConstraintName},
			{"table", pgErr.TableName}, {"column", pgErr.ColumnName}, {"type", pgErr.DataTypeName}} {
			if f.v != "" && !strings.Contains(msg, `"`+f.v+`"`) {
				fmt.Fprintf(&b, ", %s %q", f.name, f.v)
			}
		}
		fmt.Fprintf(&b, " (SQLSTATE %s)", pgErr.Code)
		return &redactedError{msg: b.String(), err: err}
	}
	var enc *encodeError
	if errors.As(err, &enc) {
		return &redactedError{msg: "a statement's argument cannot be encoded for its parameter's type (does the key or value fit the column?)", err: err}
	}
	return err
}

// redactMessage cuts a PostgreSQL message at its first ": " and replaces
// each double-quoted word that is not an identifier the error names.
func redactMessage(e *pgconn.PgError) string {
	msg, _, _ := strings.Cut(e.Message, ": ")
	names := []string{e.ConstraintName, e.TableName, e.ColumnName, e.DataTypeName, e.SchemaName}
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(msg[i+1:], '"')
		}
		if j < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		if word := msg[i+1 : i+1+j]; word != "" && slices.Contains(names, word) {
			b.WriteString(msg[i : i+j+2])
		} else {
			b.WriteString(`"…"`)
		}
		msg = msg[i+j+2:]
	}
}

// prepare prepares stmts on conn (once per connection: named by their
// text, so the batch uses them too) and returns their descriptions, or the
// index of the statement the server refused (-1 when the connection
// failed).
func prepare(ctx context.Context, conn *pgx.Conn, stmts []stmt) ([]*pgconn.StatementDescription, int, error) {
	sds := make([]*pgconn.StatementDescription, len(stmts))
	for i, s := range stmts {
		sd, err := conn.Prepare(ctx, s.query, s.query)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return nil, i, err // the server refused the statement
		}
		if err != nil {
			return nil, -1, err // the connection's failure, not the statement's
		}
		sds[i] = sd
	}
	return sds, -1, nil
}

// unencodable returns the first statement with an argument pgx cannot
// encode for its parameter's type (a key that is not a number for a
// bigint parameter), as an *encodeError, and its index: it fails alike
// however often the batch is retried. pgx encodes a batch's arguments
// before it sends anything and names the failing step only in the text of
// ErrPreprocessingBatch, so a batch that failed so is encoded again, the
// same way (pgx's own ExtendedQueryBuilder), to find which.
func unencodable(conn *pgx.Conn, sds []*pgconn.StatementDescription, stmts []stmt) (int, error) {
	var eqb pgx.ExtendedQueryBuilder
	for i, s := range stmts {
		if err := eqb.Build(conn.TypeMap(), sds[i], s.args); err != nil {
			return i, &encodeError{err: err}
		}
	}
	return -1, nil
}

// encodeError is an argument pgx cannot encode for its parameter's type.
// Its message quotes the value, so it is redacted before it is shown.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

func (db *postgresDB) queryFirst(ctx context.Context, query string, args []any) (v []byte, null, found bool, err error) {
	if err := db.init(ctx); err != nil {
		return nil, false, false, withCtx(ctx, err)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, false, false, rows.Err()
	}
	raw := rows.RawValues()
	if len(raw) == 0 {
		return nil, false, false, errors.New("query returns no columns")
	}
	null = raw[0] == nil
	if !null {
		dst := make([]any, len(raw)) // nil entries are skipped by pgx
		dst[0] = &v
		if err := rows.Scan(dst...); err != nil {
			return nil, false, false, err
		}
		if v == nil {
			v = []byte{}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, false, err
	}
	return v, null, true, nil
}
