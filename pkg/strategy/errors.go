package strategy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ringcache/ringcache/internal/hlc"
)

// Errors returned by a Namespace. Callers map them to gRPC codes at the RPC
// edge; inside the node they travel wrapped with %w.
var (
	// ErrInvalidArgument marks a request that can never succeed as sent:
	// empty key, key or value too large, key not valid UTF-8.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrBackend marks a failure of the database behind a namespace.
	ErrBackend = errors.New("backend error")
	// ErrNoBackend marks a read-through or write-through operation on a
	// namespace that has no backend.
	ErrNoBackend = errors.New("namespace has no backend")
	// ErrRejected marks a write the database refused for good (constraint,
	// type or syntax error): retrying it unchanged fails again. Writers wrap
	// it; write-behind moves such a write to the dead letters.
	ErrRejected = errors.New("write rejected by the database")
	// ErrBackpressure marks a write refused because a bounded queue is full
	// (the write-behind journal); the caller should retry later.
	ErrBackpressure = errors.New("backpressure")
	// ErrLeaseInvalid marks a leased Set whose lease a newer write or delete
	// invalidated, or which expired: the value may be stale, so it was not
	// stored.
	ErrLeaseInvalid = errors.New("lease invalid")
	// ErrSuperseded is what a Journal returns for a write older than one
	// already queued for the key: the write is moot, and the newer one
	// stands.
	ErrSuperseded = errors.New("superseded by a newer queued write")
	// ErrClosed marks a call on a Namespace after Close.
	ErrClosed = errors.New("namespace closed")
	// ErrStaleVersion marks a write that changed nothing because the
	// database holds its key at a newer version: a Writer returns it as a
	// *StaleVersionError. A write that changed nothing is never
	// acknowledged as written.
	ErrStaleVersion = errors.New("a newer version of the key is stored")
)

// StaleWrite is one write of a batch that changed nothing because the
// database holds its key at a newer version.
type StaleWrite struct {
	Index   int    // the write's position in the batch
	Version uint64 // the write's version
	// Stored is the version the database holds, 0 when it cannot say (a
	// templated table whose version the node cannot read).
	Stored uint64
}

// StaleVersionError is the error of a Writer whose batch was applied
// except the writes it lists, which changed nothing because the database
// holds their keys at newer versions (or at the same version with another
// value). It wraps ErrStaleVersion. Its message names no key.
type StaleVersionError struct {
	Namespace string
	Writes    []StaleWrite
}

func (e *StaleVersionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "namespace %q: ", e.Namespace)
	for i, w := range e.Writes {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Writes)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "write %d (version %s) changed nothing: the database holds ", w.Index+1, versionString(w.Version))
		if w.Stored == 0 {
			b.WriteString("a version at least as new")
		} else {
			fmt.Fprintf(&b, "version %s", versionString(w.Stored))
		}
	}
	return b.String()
}

func (e *StaleVersionError) Unwrap() error { return ErrStaleVersion }

// versionString shows a version with the wall time it was stamped at.
func versionString(v uint64) string {
	return fmt.Sprintf("%d, of %s", v, hlc.Time(v).UTC().Format(time.RFC3339Nano))
}
