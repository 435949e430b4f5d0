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

// Writer applies writes to the system of record. Store must be an upsert and
// Remove must succeed when the key is absent, so that a retried write is
// harmless. The value slice is only read during the call.
type Writer interface {
	Store(ctx context.Context, key string, value []byte) error
	Remove(ctx context.Context, key string) error
}

// Backend is a Loader and Writer for one namespace.
type Backend interface {
	Loader
	Writer
}
