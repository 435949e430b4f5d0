package backend

import (
	"bytes"
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
	// genericStoredSQL reads what a write that changed nothing met.
	genericStoredSQL = `SELECT version, value IS NULL, value FROM ringcache_kv WHERE namespace = $1 AND key = $2`
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
	// execBatch runs stmts in order in one transaction, all or nothing, and
	// returns the rows each statement affected. On failure it returns the
	// index of the statement that failed, or -1 when the transaction itself
	// failed (begin, commit, connection).
	execBatch(ctx context.Context, stmts []stmt) (affected []int64, failed int, err error)
	// queryRow runs query and scans its first row into dest; found is false
	// when there is no row.
	queryRow(ctx context.Context, query string, args []any, dest ...any) (found bool, err error)
	// rejected reports whether err is a permanent refusal by the database
	// (see the package doc).
	rejected(err error) bool
	// rewrite turns a $N template into the driver's syntax.
	rewrite(query string) string
	// valueArg returns the argument that binds value in a template.
	valueArg(value []byte) any
	// validateKey reports a key the database cannot store as text.
	validateKey(key string) error
	// redact returns err with a message that quotes no value (see
	// redactedError).
	redact(err error) error
}

// table is the strategy.Backend of one namespace.
type table struct {
	namespace string
	db        executor
	generic   bool   // rows live in ringcache_kv; args start with the namespace
	load      string // "" when not configured
	upsert    string // generic: genericWriteSQL, for puts and deletes
	del       string
	stored    string // generic: genericStoredSQL
	// Whether the templates bind the version (upsert $3, delete $2).
	upsertVersion, delVersion bool
}

var (
	_ strategy.Backend      = (*table)(nil)
	_ strategy.KeyValidator = (*table)(nil)
)

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
		t.load, t.upsert, t.stored = db.rewrite(genericLoadSQL), db.rewrite(genericWriteSQL), db.rewrite(genericStoredSQL)
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

// ValidateKey implements strategy.KeyValidator: a key the database cannot
// store (PostgreSQL text holds no NUL byte) is refused before a write is
// acknowledged or a load is tried, rather than dead-lettered or failing
// every load as if the database were down.
func (t *table) ValidateKey(key string) error { return t.db.validateKey(key) }

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
		return nil, false, fmt.Errorf("namespace %q: load: %w", t.namespace, withCtx(ctx, t.db.redact(err)))
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
	affected, failed, err := t.db.execBatch(ctx, stmts)
	if err == nil {
		return t.checkApplied(ctx, writes, affected)
	}
	err = t.db.redact(err)
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

// checkApplied reports the writes of a committed batch that changed
// nothing because the database holds their key at a newer version (or at
// the same version with another value: a concurrent write stamped alike):
// a write that changed nothing must not be acknowledged as written. A
// write re-applied at its own version (a retried batch) is applied. The
// generic table says which version it holds; a template only that the
// version-guarded statement matched no row (an upsert: a row at least as
// new is there; a delete: the key loads, so its row is at least as new).
// Templates that do not bind the version are not checked.
func (t *table) checkApplied(ctx context.Context, writes []strategy.Write, affected []int64) error {
	var stale []strategy.StaleWrite
	for i, w := range writes {
		if i >= len(affected) || affected[i] > 0 {
			continue
		}
		stored, isStale, err := t.staleVersion(ctx, w)
		if err != nil {
			return fmt.Errorf("namespace %q: write %d of %d changed nothing; reading the stored version: %w",
				t.namespace, i+1, len(writes), withCtx(ctx, t.db.redact(err)))
		}
		if isStale {
			stale = append(stale, strategy.StaleWrite{Index: i, Version: w.Version, Stored: stored})
		}
	}
	if stale == nil {
		return nil
	}
	return &strategy.StaleVersionError{Namespace: t.namespace, Writes: stale}
}

// staleVersion tells why w changed nothing: the stored version when a newer
// one is there (0 when unknown), and whether w lost to it.
func (t *table) staleVersion(ctx context.Context, w strategy.Write) (uint64, bool, error) {
	switch {
	case t.generic:
		var (
			version int64
			null    bool
			value   []byte
		)
		found, err := t.db.queryRow(ctx, t.stored, []any{t.namespace, w.Key}, &version, &null, &value)
		switch {
		case err != nil:
			return 0, false, err
		case !found || uint64(version) < w.Version:
			// No newer row, yet nothing changed: nothing else explains it.
			return 0, false, fmt.Errorf("the upsert matched no row and no newer version is stored")
		case uint64(version) == w.Version && null == w.Delete && (w.Delete || bytes.Equal(value, w.Value)):
			return 0, false, nil // this very write, applied before
		}
		return uint64(version), true, nil
	case w.Delete:
		if !t.delVersion || t.load == "" {
			return 0, false, nil // 0 rows: the key is absent, or unknowable
		}
		_, null, found, err := t.db.queryFirst(ctx, t.load, []any{w.Key})
		return 0, found && !null, err
	default:
		return 0, t.upsertVersion, nil
	}
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

// where names write i of a batch for an error message, without its key:
// errors reach the logs.
func (t *table) where(writes []strategy.Write, i int) string {
	op := "upsert"
	if writes[i].Delete {
		op = "delete"
	}
	if len(writes) == 1 {
		return op
	}
	return fmt.Sprintf("write %d of %d (%s)", i+1, len(writes), op)
}
