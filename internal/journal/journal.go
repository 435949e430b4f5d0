package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxPending   = 1_000_000
	DefaultMaxBytes     = 1 << 30 // 1 GiB
	DefaultMaxBatchSize = 1000
	DefaultLockTimeout  = time.Second
	// maxLastError bounds the LastError kept per record.
	maxLastError = 1024
)

// Options configures a Journal. The zero value is usable: every zero field
// takes its default. Open never modifies the caller's Options.
type Options struct {
	// MaxPending bounds the number of pending records (distinct keys).
	// Default 1,000,000.
	MaxPending int
	// MaxBytes bounds the pending namespace+key+value bytes. Default 1 GiB.
	MaxBytes int64
	// MaxBatchSize is the most Appends committed by one transaction and
	// fsync. Default 1000.
	MaxBatchSize int
	// LockTimeout is how long Open waits for the file lock held by another
	// process before failing with ErrLocked. Default 1s.
	LockTimeout time.Duration
	// NoSync skips fsync on commit.
	//
	// DANGER: with NoSync an acknowledged Append is NOT durable: a crash of
	// the machine (not only of the process) loses recent writes and can
	// corrupt the file. For tests and benchmarks of the non-durable path
	// only; never set it in production.
	NoSync bool
	// Now is the clock that stamps Record.Appended. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.MaxPending < 0 || o.MaxBytes < 0 || o.MaxBatchSize < 0 || o.LockTimeout < 0 {
		return o, fmt.Errorf("journal: options must not be negative: %+v", o)
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxBatchSize == 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Bucket names and meta keys.
var (
	bucketPending = []byte("pending") // nsKey → encode(record, seq)
	bucketQueue   = []byte("queue")   // seq (8 bytes big-endian) → nsKey
	bucketDead    = []byte("dead")    // nsKey → encode(record, 0)
	bucketMeta    = []byte("meta")    // counter name → 8 bytes big-endian
	metaPending   = []byte("pending") // number of pending records
	metaBytes     = []byte("bytes")   // sum of Record.size over pending records
	metaDead      = []byte("dead")    // number of dead letters
)

// Journal is the durable write-behind journal of one node: one bbolt file.
// It is safe for concurrent use by many goroutines.
type Journal struct {
	db   *bolt.DB
	path string
	opts Options

	mu     sync.RWMutex // held for reading by every call; Close takes it for writing
	closed bool

	reqs      chan *appendReq // to the committer goroutine
	committed chan struct{}   // closed when the committer has returned
	appends   atomic.Uint64
	coalesced atomic.Uint64
	rep       replicaState // replica.go
}

// Open opens (creating it, mode 0600, and its directory, mode 0700, if
// needed) the journal file at path. A file held by another process fails
// after Options.LockTimeout with an error wrapping ErrLocked.
func Open(path string, opts Options) (*Journal, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal: create directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("journal %s is locked by another process (waited %s; is another ringcached using this data dir?): %w",
			path, opts.LockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketPending, bucketQueue, bucketDead, bucketMeta, bucketReplicas} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("journal: initialise %s: %w", path, err)
	}
	j := &Journal{db: db, path: path, opts: opts, reqs: make(chan *appendReq, opts.MaxBatchSize), committed: make(chan struct{})}
	go j.committer()
	return j, nil
}

// Close waits for calls in progress and closes the file. Later calls return
// ErrClosed; a second Close returns nil.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	close(j.reqs) // no Append is sending: they hold the read lock to send
	<-j.committed
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("journal: close %s: %w", j.path, err)
	}
	return nil
}

// Path returns the journal file's path.
func (j *Journal) Path() string { return j.path }

// Stats describes a journal. Pending, PendingBytes, Oldest and DeadLetters
// are read from the file; Appends and Coalesced count since Open.
type Stats struct {
	Pending      int       // pending records (keys)
	PendingBytes int64     // their namespace+key+value bytes
	Oldest       time.Time // Appended of the oldest pending record; zero if none
	DeadLetters  int
	Appends      uint64 // acknowledged Appends (including superseded ones)
	Coalesced    uint64 // Appends that replaced a pending write or were superseded by one
	MaxPending   int    // the bounds in force (Options, defaults applied)
	MaxBytes     int64
}

// Stats returns the journal's counters.
func (j *Journal) Stats() (Stats, error) {
	s := Stats{Appends: j.appends.Load(), Coalesced: j.coalesced.Load(),
		MaxPending: j.opts.MaxPending, MaxBytes: j.opts.MaxBytes}
	err := j.view(func(tx *bolt.Tx) error {
		c, err := readCounters(tx)
		if err != nil {
			return err
		}
		s.Pending, s.PendingBytes, s.DeadLetters = int(c.pending), int64(c.bytes), int(c.dead)
		_, nk := tx.Bucket(bucketQueue).Cursor().First()
		if nk == nil {
			return nil
		}
		r, _, err := pendingAt(tx, nk)
		s.Oldest = r.Appended
		return err
	})
	return s, err
}

// MaxVersion returns the highest Version among pending records, 0 if none.
// A node moves its clock past it on start, so a write after a restart with
// a clock that went backwards is still the newest. Dead letters are left
// out: one may carry a version no clock of this node stamped (a record
// revived from another node's journal, a version forged before peers'
// clocks were bounded), and adopting it would stamp every later write
// ahead of the wall clock.
func (j *Journal) MaxVersion() (uint64, error) {
	var maxV uint64
	err := j.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(_, v []byte) error {
			r, _, err := decode(v)
			if err != nil {
				return err
			}
			maxV = max(maxV, r.Version)
			return nil
		})
	})
	return maxV, err
}

// counters is the meta bucket: exact, updated in the same transaction as the
// records they count.
type counters struct{ pending, bytes, dead uint64 }

func readCounters(tx *bolt.Tx) (counters, error) {
	m := tx.Bucket(bucketMeta)
	var c counters
	for _, f := range []struct {
		name []byte
		v    *uint64
	}{{metaPending, &c.pending}, {metaBytes, &c.bytes}, {metaDead, &c.dead}} {
		b := m.Get(f.name)
		switch len(b) {
		case 0: // a new journal
		case 8:
			*f.v = binary.BigEndian.Uint64(b)
		default:
			return c, corruptf("meta counter %q has %d bytes", f.name, len(b))
		}
	}
	return c, nil
}

func (c counters) write(tx *bolt.Tx) error {
	m := tx.Bucket(bucketMeta)
	for _, f := range []struct {
		name []byte
		v    uint64
	}{{metaPending, c.pending}, {metaBytes, c.bytes}, {metaDead, c.dead}} {
		if err := m.Put(f.name, binary.BigEndian.AppendUint64(nil, f.v)); err != nil {
			return err
		}
	}
	return nil
}

// nsKey is the bbolt key of a record: namespace, a NUL byte, key. Namespaces
// never contain NUL, so the split is unambiguous.
func nsKey(ns, key string) []byte {
	b := make([]byte, 0, len(ns)+1+len(key))
	b = append(b, ns...)
	b = append(b, 0)
	return append(b, key...)
}

// nsOf returns the namespace of a record key, for error messages: keys
// never appear in them, since errors reach the logs.
func nsOf(nk []byte) string {
	ns, _, _ := bytes.Cut(nk, []byte{0})
	return string(ns)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// pendingAt returns the pending record that queue entry nk points to.
func pendingAt(tx *bolt.Tx, nk []byte) (Record, uint64, error) {
	b := tx.Bucket(bucketPending).Get(nk)
	if b == nil {
		return Record{}, 0, corruptf("queue names a record of namespace %q that is not pending", nsOf(nk))
	}
	return decode(b)
}

// view and update run fn in a managed bbolt transaction unless the journal
// is closed, and wrap bbolt's errors.
func (j *Journal) view(fn func(*bolt.Tx) error) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	return j.wrap("read", j.db.View(fn))
}

func (j *Journal) update(op string, fn func(*bolt.Tx) error) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	return j.wrap(op, j.db.Update(fn))
}

// wrap names the operation and turns a full disk into ErrFull. Errors the
// journal made itself (ErrFull, ErrCorrupt, ...) pass through unchanged.
func (j *Journal) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrFull), errors.Is(err, ErrCorrupt), errors.Is(err, ErrInvalid),
		errors.Is(err, ErrNotFound):
		return err
	}
	if errno, full := j.diskFull(err); full {
		if !errors.Is(err, errno) {
			err = fmt.Errorf("%w (%w)", err, errno)
		}
		return fmt.Errorf("%w: no space left on the device holding %s (%s); nothing was stored — free disk space, then retry: %w",
			ErrFull, j.path, op, err)
	}
	return fmt.Errorf("journal: %s %s: %w", op, j.path, err)
}
