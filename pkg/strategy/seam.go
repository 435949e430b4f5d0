package strategy

import "context"

// Loader reads a key's value from the system of record (the database behind
// a namespace). It is called on the key's owner only, by one goroutine per key
// at a time. found=false with a nil error means the key does not exist there.
//
// The returned slice is owned by the caller afterwards; the Loader must not
// modify or reuse it.
type Loader interface {
	Load(ctx context.Context, key string) (value []byte, found bool, err error)
}

// LoaderFunc adapts a function to a Loader.
type LoaderFunc func(ctx context.Context, key string) ([]byte, bool, error)

// Load calls f(ctx, key).
func (f LoaderFunc) Load(ctx context.Context, key string) ([]byte, bool, error) { return f(ctx, key) }

// Write is one change to the system of record.
type Write struct {
	Key string
	// Value is the new value; ignored for a Delete. Only read during Write.
	Value  []byte
	Delete bool
	// Version orders the writes of one key (a hybrid logical clock): a
	// Writer that stores versions never lets a write replace a row of a
	// higher version, so a late retry or a write from a previous owner
	// cannot overwrite a newer value.
	Version uint64
}

// Writer applies writes to the system of record. Write applies the batch in
// order and atomically where the database allows (one transaction), and is
// idempotent: applying a batch twice leaves the same rows. An error wrapping
// ErrRejected means the database refused a write for good (a constraint or
// type error) and retrying it unchanged will fail again; any other error is
// presumed transient (the database is down or overloaded).
type Writer interface {
	Write(ctx context.Context, writes []Write) error
}

// WriterFunc adapts a function to a Writer.
type WriterFunc func(ctx context.Context, writes []Write) error

// Write calls f(ctx, writes).
func (f WriterFunc) Write(ctx context.Context, writes []Write) error { return f(ctx, writes) }

// Backend is a Loader and Writer for one namespace.
type Backend interface {
	Loader
	Writer
}
