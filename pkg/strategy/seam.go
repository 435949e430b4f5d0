package strategy

import (
	"context"
	"time"
)

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
	// Elsewhere marks a write Journal.Pending found pending on another node
	// (a partition's previous owner, a member back from a partition). A
	// read answers with it but does not cache it: that node flushes it, and
	// the database may already hold a newer row that it will lose to
	// (engine.Superseded), which this node would not hear of. Writers
	// ignore it.
	Elsewhere bool
}

// Writer applies writes to the system of record. Write applies the batch in
// order and atomically where the database allows (one transaction), and is
// idempotent: applying a batch twice leaves the same rows. An error wrapping
// ErrRejected means the database refused a write for good (a constraint or
// type error) and retrying it unchanged will fail again. A
// *StaleVersionError (ErrStaleVersion) means the batch was applied except
// the writes it lists, which changed nothing because the database holds
// their keys at newer versions; a Writer that stores versions must report
// them, since such a write must not be acknowledged as written. Any other
// error is presumed transient (the database is down or overloaded).
type Writer interface {
	Write(ctx context.Context, writes []Write) error
}

// WriterFunc adapts a function to a Writer.
type WriterFunc func(ctx context.Context, writes []Write) error

// Write calls f(ctx, writes).
func (f WriterFunc) Write(ctx context.Context, writes []Write) error { return f(ctx, writes) }

// KeyValidator may be implemented by a Loader or Writer that cannot store
// every key (PostgreSQL text cannot hold a NUL byte). Namespace.ValidateKey
// asks it, so such a key is refused up front with ErrInvalidArgument,
// before a write-behind Set is acknowledged or a load is tried. The error
// says why, without the key.
type KeyValidator interface {
	ValidateKey(key string) error
}

// Backend is a Loader and Writer for one namespace.
type Backend interface {
	Loader
	Writer
}

// Entry is one cached result in a Store. A negative entry (Found=false)
// remembers that the backend has no such key.
type Entry struct {
	// Value is shared with readers and must never be modified.
	Value []byte
	Found bool
	// Cost is how long the load that produced the entry took: XFetch's Δ
	// (Policy.XFetchBeta). 0 for a written value.
	Cost LoadCost
	// Epoch is the namespace's flush epoch when the value was read or
	// written (Namespace.Flush): a flush hides the entries of older epochs.
	// Cost and Epoch fill the padding after Found, so an Entry stays 48
	// bytes.
	Epoch uint32
	// TTL is how long the entry lives from its last write; ≤ 0 means the
	// store's longest lifetime.
	TTL time.Duration
	// Version is the write's version (a hybrid logical clock), 0 when
	// unknown (a loaded value). SetIfNewer never replaces a higher version.
	Version uint64
}

// Store is the owner's memory: a bounded map of entries with a TTL each
// (ringcache's is internal/store, on otter). Keys are store keys (StoreKey).
// It must be safe for concurrent use.
type Store interface {
	// Get returns the key's live entry.
	Get(key string) (Entry, bool)
	// GetWithLife returns the key's live entry and how long it has left.
	GetWithLife(key string) (Entry, time.Duration, bool)
	// SetIfAbsent stores e unless the key has a live entry.
	SetIfAbsent(key string, e Entry) bool
	// SetIfNewer stores e unless the key holds an entry of a higher Version.
	SetIfNewer(key string, e Entry) bool
	// SetUnless stores e unless the key has a live entry old with
	// keep(old), and reports whether it stored; the test and the store are
	// one step with respect to other writes of the key. keep runs under
	// the store's lock of the key: it must be quick and must not call the
	// Store.
	SetUnless(key string, e Entry, keep func(old Entry) bool) bool
	Delete(key string)
}

// SweepStore is a Store that can remove the entries a test selects, each
// tested and removed in one step with respect to writes of its key, so
// that a flush frees what it hid (SweepFlushed). ringcache's
// internal/store is one.
type SweepStore interface {
	Store
	// DeleteIf removes every entry whose key satisfies match and that drop
	// says to remove, and returns how many it removed; it stops early when
	// ctx ends. drop runs under the store's lock of the key: it must be
	// quick and must not call the Store.
	DeleteIf(ctx context.Context, match func(key string) bool, drop func(key string, e Entry) bool) int
}

// Journal is the durable queue of a node's write-behind writes (ringcache's
// is internal/journal, on bbolt). It must be safe for concurrent use.
type Journal interface {
	// Append returns once w is durable. It returns an error wrapping
	// ErrBackpressure when the queue is at its bound, and ErrSuperseded when
	// a newer write of the key is already queued (w is moot).
	Append(ctx context.Context, ns string, w Write) error
	// Pending returns the key's queued write that has not reached the
	// database yet, if any. An implementation may also consult other nodes
	// (the key's previous owner, its replicas); it must not fail a read for
	// an unreachable peer, only for its own storage.
	Pending(ctx context.Context, ns, key string) (Write, bool, error)
}

// Versions stamps writes with versions that never repeat or go backwards
// on one node (ringcache's is a hybrid logical clock, internal/hlc).
type Versions interface {
	Now() uint64
	// Seed moves the clock to v, however far ahead, so that every later
	// Now exceeds it: a write-through write that lost to a newer stored
	// version is retried past it.
	Seed(v uint64)
}

// Clock is the time source of load durations (XFetch's Δ); otter.Clock
// and internal/testclock satisfy it. NowNano is monotonic for a Clock that
// is the wall clock's monotonic reading.
type Clock interface {
	NowNano() int64
}
