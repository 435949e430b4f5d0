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
)
