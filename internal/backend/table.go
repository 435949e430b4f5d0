package backend

import (
	"context"
	"fmt"
	"strings"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// SQL for the generic table, in PostgreSQL placeholder syntax ($1 namespace,
// $2 key, $3 value); CURRENT_TIMESTAMP works on both drivers.
const (
	genericLoadSQL   = `SELECT value FROM ringcache_kv WHERE namespace = $1 AND key = $2`
	genericUpsertSQL = `INSERT INTO ringcache_kv (namespace, key, value, version, updated_at)
VALUES ($1, $2, $3, 0, CURRENT_TIMESTAMP)
ON CONFLICT (namespace, key) DO UPDATE
SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at`
	genericDeleteSQL = `DELETE FROM ringcache_kv WHERE namespace = $1 AND key = $2`
)

// executor is what a driver provides to a table.
type executor interface {
	// queryFirst runs query and returns the first column of the first row.
	// found is false when there is no row; null is true when that column is
	// NULL (v is then nil). v is a fresh slice.
	queryFirst(ctx context.Context, query string, args []any) (v []byte, null, found bool, err error)
	// exec runs a statement that returns no rows.
	exec(ctx context.Context, query string, args []any) error
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
	upsert    string
	del       string
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
		t.load, t.upsert, t.del = db.rewrite(genericLoadSQL), db.rewrite(genericUpsertSQL), db.rewrite(genericDeleteSQL)
		return t, nil
	}
	prepare := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return ""
		}
		return db.rewrite(s)
	}
	t.load, t.upsert, t.del = prepare(spec.LoadSQL), prepare(spec.UpsertSQL), prepare(spec.DeleteSQL)
	return t, nil
}

func (t *table) args(vals ...any) []any {
	if t.generic {
		return append([]any{t.namespace}, vals...)
	}
	return vals
}

// Load implements strategy.Loader.
func (t *table) Load(ctx context.Context, key string) ([]byte, bool, error) {
	if t.load == "" {
		return nil, false, &missingTemplateError{namespace: t.namespace, field: "load_sql"}
	}
	v, null, found, err := t.db.queryFirst(ctx, t.load, t.args(key))
	if err != nil {
		return nil, false, fmt.Errorf("namespace %q: load: %w", t.namespace, withCtx(ctx, err))
	}
	switch {
	case !found:
		return nil, false, nil
	case null && !t.generic:
		return nil, false, nil
	case v == nil:
		// ringcache_kv.value is NOT NULL: a nil here is an empty value
		// that the driver reported as NULL (SQLite empty BLOB).
		v = []byte{}
	}
	return v, true, nil
}

// Store implements strategy.Writer: an upsert.
func (t *table) Store(ctx context.Context, key string, value []byte) error {
	if t.upsert == "" {
		return &missingTemplateError{namespace: t.namespace, field: "upsert_sql"}
	}
	if value == nil {
		value = []byte{} // drivers bind a nil slice as NULL
	}
	var arg any = value
	if !t.generic {
		arg = t.db.valueArg(value)
	}
	if err := t.db.exec(ctx, t.upsert, t.args(key, arg)); err != nil {
		return fmt.Errorf("namespace %q: store: %w", t.namespace, withCtx(ctx, err))
	}
	return nil
}

// Remove implements strategy.Writer. Removing an absent key succeeds.
func (t *table) Remove(ctx context.Context, key string) error {
	if t.del == "" {
		return &missingTemplateError{namespace: t.namespace, field: "delete_sql"}
	}
	if err := t.db.exec(ctx, t.del, t.args(key)); err != nil {
		return fmt.Errorf("namespace %q: remove: %w", t.namespace, withCtx(ctx, err))
	}
	return nil
}
