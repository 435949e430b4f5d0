package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/ringcache/ringcache/pkg/strategy"
)

var (
	// ErrInvalidConfig is wrapped by every error from Config.Validate.
	ErrInvalidConfig = errors.New("invalid backend config")
	// ErrInvalidSpec is wrapped by every template validation error from
	// DB.Table.
	ErrInvalidSpec = errors.New("invalid table spec")
	// ErrNoTemplate is returned by Load or Write on a templated namespace
	// that has no template for an operation it needs. From Write it also
	// wraps strategy.ErrRejected: retrying cannot succeed.
	ErrNoTemplate = errors.New("no SQL template for this operation")
	// ErrGenericTableUnavailable is returned by DB.Table for a namespace
	// without templates when Open could not create ringcache_kv (for
	// example, the role may not create tables).
	ErrGenericTableUnavailable = errors.New("generic table ringcache_kv is unavailable")
)

// fieldError is a validation error about one configuration field. Its
// message reads "field: problem"; it unwraps to ErrInvalidConfig or
// ErrInvalidSpec.
type fieldError struct {
	kind  error
	field string
	msg   string
}

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func (e *fieldError) Unwrap() error { return e.kind }

// missingTemplateError reads `namespace "x": no upsert_sql configured`. It
// unwraps to ErrNoTemplate, and also to strategy.ErrRejected when write is
// set.
type missingTemplateError struct {
	namespace string
	field     string
	write     bool
}

func (e *missingTemplateError) Error() string {
	return fmt.Sprintf("namespace %q: no %s configured", e.namespace, e.field)
}

func (e *missingTemplateError) Unwrap() []error {
	if e.write {
		return []error{ErrNoTemplate, strategy.ErrRejected}
	}
	return []error{ErrNoTemplate}
}

// withCtx makes err wrap ctx.Err() when the context is done, so callers can
// tell a cancelled call from a database failure with errors.Is whatever
// error the driver produced.
func withCtx(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// redactedError is a database error whose message says what went wrong
// (the condition, its code, the constraint, table, column or type it is
// about) but no value a statement carried: flush errors reach the logs,
// and keys and values must never appear there. It unwraps to the driver's
// error, so errors.As still finds a *pgconn.PgError with every field.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
