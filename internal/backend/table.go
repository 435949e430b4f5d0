package backend

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// SQL for the generic table, in PostgreSQL placeholder syntax ($1 namespace,
// $2 key, $3 value, $4 version); CURRENT_TIMESTAMP works on both drivers. A
// delete is the same upsert with a NULL value: a tombstone that keeps its
// version, so an older write arriving later cannot resurrect the row. Load
// skips tombstones.
const (
	genericLoadSQL  = `SELECT value FROM ringcache_kv WHERE namespace = $1 AND key = $2 AND value IS NOT NULL`
	genericWriteSQL = `INSERT INTO ringcache_kv (namespace, key, value, version, updated_at)
VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)
ON CONFLICT (namespace, key) DO UPDATE
SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at
WHERE ringcache_kv.version < excluded.version`
)

// stmt is one statement of a write batch.
type stmt struct {
	query string
	args  []any
}

// executor is what a driver provides to a table.
type executor interface {
	// queryFirst runs query and returns the first column of the first row.
	// found is false when there is no row; null is true when that column is
	// NULL (v is then nil). v is a fresh slice.
	queryFirst(ctx context.Context, query string, args []any) (v []byte, null, found bool, err error)
	// execBatch runs stmts in order in one transaction, all or nothing. On
	// failure it returns the index of the statement that failed, or -1 when
	// the transaction itself failed (begin, commit, connection).
	execBatch(ctx context.Context, stmts []stmt) (failed int, err error)
	// rejected reports whether err is a permanent refusal by the database
	// (see the package doc).
	rejected(err error) bool
	// rewrite turns a $N template into the driver's syntax.
	rewrite(query string) string
	// valueArg returns the argument that binds value in a template.
	valueArg(value []byte) any
}

// table is the strategy.Backend of one namespace.
type table struct {
	namespace string
	db        executor
	generic   bool   // rows live in ringcache_kv; args start with the namespace
	load      string // "" when not configured
	upsert    string // generic: genericWriteSQL, for puts and deletes
	del       string
	// Whether the templates bind the version (upsert $3, delete $2).
	upsertVersion, delVersion bool
}

var _ strategy.Backend = (*table)(nil)

// newTable validates spec and builds its Backend. genericErr is non-nil when
// the generic table could not be created at Open.
func newTable(db executor, spec TableSpec, genericErr error) (*table, error) {
	if err := spec.validate(); err != nil {
		if spec.Namespace == "" {
			return nil, err
		}
		return nil, fmt.Errorf("namespace %q: %w", spec.Namespace, err)
	}
	t := &table{namespace: spec.Namespace, db: db}
	if !spec.templated() {
		if genericErr != nil {
			return nil, fmt.Errorf("namespace %q: %w: %w", spec.Namespace, ErrGenericTableUnavailable, genericErr)
		}
		t.generic = true
		t.load, t.upsert = db.rewrite(genericLoadSQL), db.rewrite(genericWriteSQL)
		return t, nil
	}
	prepare := func(s string, p templateParams) (string, bool) {
		if strings.TrimSpace(s) == "" {
			return "", false
		}
		n, _ := checkPlaceholders(s, p) // validated above
		return db.rewrite(s), n == len(p.roles)
	}
	t.load, _ = prepare(spec.LoadSQL, loadParams)
	t.upsert, t.upsertVersion = prepare(spec.UpsertSQL, upsertParams)
	t.del, t.delVersion = prepare(spec.DeleteSQL, deleteParams)
	return t, nil
}

// Load implements strategy.Loader.
func (t *table) Load(ctx context.Context, key string) ([]byte, bool, error) {
	if t.load == "" {
		return nil, false, &missingTemplateError{namespace: t.namespace, field: "load_sql"}
	}
	args := []any{key}
	if t.generic {
		args = []any{t.namespace, key}
	}
	v, null, found, err := t.db.queryFirst(ctx, t.load, args)
	if err != nil {
		return nil, false, fmt.Errorf("namespace %q: load: %w", t.namespace, withCtx(ctx, err))
	}
	switch {
	case !found:
		return nil, false, nil
	case null && !t.generic:
		return nil, false, nil
	case v == nil:
		// The generic load skips tombstones (NULL values): a nil here is
		// an empty value that the driver reported as NULL (SQLite empty
		// BLOB).
		v = []byte{}
	}
	return v, true, nil
}

// Write implements strategy.Writer: the batch runs in order in one
// transaction. A put is a versioned upsert; a delete is a tombstone in the
// generic table, delete_sql in a templated one.
func (t *table) Write(ctx context.Context, writes []strategy.Write) error {
	if len(writes) == 0 {
		return nil
	}
	stmts := make([]stmt, len(writes))
	for i, w := range writes {
		if w.Version > math.MaxInt64 {
			// Both databases store versions as signed 64-bit integers.
			return fmt.Errorf("%w: namespace %q: %s: version %d exceeds the largest storable version %d",
				strategy.ErrRejected, t.namespace, t.where(writes, i), w.Version, int64(math.MaxInt64))
		}
		s, err := t.stmt(w)
		if err != nil {
			return err
		}
		stmts[i] = s
	}
	failed, err := t.db.execBatch(ctx, stmts)
	if err == nil {
		return nil
	}
	if failed < 0 && len(writes) == 1 {
		failed = 0
	}
	where := "write"
	if failed >= 0 {
		where = t.where(writes, failed)
	}
	if ctx.Err() == nil && t.db.rejected(err) {
		return fmt.Errorf("%w: namespace %q: %s: %w", strategy.ErrRejected, t.namespace, where, err)
	}
	return fmt.Errorf("namespace %q: %s: %w", t.namespace, where, withCtx(ctx, err))
}

// stmt returns the statement that applies w.
func (t *table) stmt(w strategy.Write) (stmt, error) {
	version := int64(w.Version)
	switch {
	case t.generic:
		var value any // a delete writes a NULL tombstone
		if !w.Delete {
			value = w.Value
			if w.Value == nil {
				value = []byte{} // drivers bind a nil slice as NULL
			}
		}
		return stmt{t.upsert, []any{t.namespace, w.Key, value, version}}, nil
	case w.Delete:
		if t.del == "" {
			return stmt{}, &missingTemplateError{namespace: t.namespace, field: "delete_sql", write: true}
		}
		if t.delVersion {
			return stmt{t.del, []any{w.Key, version}}, nil
		}
		return stmt{t.del, []any{w.Key}}, nil
	default:
		if t.upsert == "" {
			return stmt{}, &missingTemplateError{namespace: t.namespace, field: "upsert_sql", write: true}
		}
		value := w.Value
		if value == nil {
			value = []byte{}
		}
		if t.upsertVersion {
			return stmt{t.upsert, []any{w.Key, t.db.valueArg(value), version}}, nil
		}
		return stmt{t.upsert, []any{w.Key, t.db.valueArg(value)}}, nil
	}
}

// where names write i of a batch for an error message.
func (t *table) where(writes []strategy.Write, i int) string {
	op := "upsert"
	if writes[i].Delete {
		op = "delete"
	}
	if len(writes) == 1 {
		return fmt.Sprintf("%s of key %q", op, writes[i].Key)
	}
	return fmt.Sprintf("write %d of %d (%s of key %q)", i+1, len(writes), op, writes[i].Key)
}
