package journal

import "errors"

// Sentinel errors. Errors returned by the Journal wrap them (test with
// errors.Is); the RPC edge maps them to gRPC codes (ErrFull to
// RESOURCE_EXHAUSTED, ErrInvalid to INVALID_ARGUMENT, ErrNotFound to
// NOT_FOUND, ErrClosed to UNAVAILABLE).
var (
	// ErrFull is wrapped when an Append would pass Options.MaxPending or
	// Options.MaxBytes, and when the disk holding the journal is full. Nothing
	// was stored; the caller may retry later.
	ErrFull = errors.New("journal full")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("journal closed")
	// ErrCorrupt is wrapped when a stored record (or the journal's own
	// bookkeeping) cannot be decoded. The error says what is wrong.
	ErrCorrupt = errors.New("journal corrupt")
	// ErrInvalid is wrapped when Append is given a record it cannot store:
	// an empty namespace or key, a namespace containing a NUL byte, a key too
	// long for bbolt, or a delete that carries a value.
	ErrInvalid = errors.New("invalid journal record")
	// ErrNotFound is wrapped by Revive and Drop when the key has no dead
	// letter.
	ErrNotFound = errors.New("no such dead letter")
	// ErrSuperseded is returned by Append when a newer version of the key is
	// already pending: the write is durable in the sense that a newer one
	// will reach the database instead, but the caller must not treat its
	// value as the key's current one.
	ErrSuperseded = errors.New("superseded by a newer pending write")
	// ErrLocked is wrapped by Open when another process (or another Journal
	// in this process) holds the file.
	ErrLocked = errors.New("journal locked")
)
