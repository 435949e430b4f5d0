package strategy

import "errors"

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
)
