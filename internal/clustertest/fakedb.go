package clustertest

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// FakeDB is an in-memory backend that counts loads. Block holds every load
// until the returned release is called, so a test can pile callers onto one
// load deterministically.
type FakeDB struct {
	mu       sync.Mutex
	rows     map[string][]byte
	versions map[string]uint64 // of written rows; deleted rows keep theirs
	gate     chan struct{}
	loadErr  error // every load fails with it while set
	writeErr error // every write fails with it while set
	loads    atomic.Int64
	writes   atomic.Int64
}

// NewFakeDB returns an empty FakeDB.
func NewFakeDB() *FakeDB { return &FakeDB{rows: map[string][]byte{}, versions: map[string]uint64{}} }

// Write implements strategy.Writer like the generic table: a write never
// replaces a row of a higher version, and deletes keep their version. The
// writes that changed nothing for it are returned in a
// *strategy.StaleVersionError, except one applied again at its own version
// (a retried batch).
func (db *FakeDB) Write(_ context.Context, ws []strategy.Write) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.writeErr != nil {
		return db.writeErr
	}
	var stale []strategy.StaleWrite
	for i, w := range ws {
		if v, ok := db.versions[w.Key]; ok && v >= w.Version {
			if row, found := db.rows[w.Key]; v > w.Version || found == w.Delete || !bytes.Equal(row, w.Value) {
				stale = append(stale, strategy.StaleWrite{Index: i, Version: w.Version, Stored: v})
			}
			continue
		}
		db.versions[w.Key] = w.Version
		if w.Delete {
			delete(db.rows, w.Key)
		} else {
			db.rows[w.Key] = w.Value
		}
		db.writes.Add(1)
	}
	if len(stale) > 0 {
		return &strategy.StaleVersionError{Writes: stale}
	}
	return nil
}

// Row returns a row as stored.
func (db *FakeDB) Row(key string) ([]byte, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	v, ok := db.rows[key]
	return v, ok
}

// Writes returns how many row writes were applied.
func (db *FakeDB) Writes() int64 { return db.writes.Load() }

// Put stores a row.
func (db *FakeDB) Put(key string, value []byte) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.rows[key] = value
}

// Loads returns how many loads ran.
func (db *FakeDB) Loads() int64 { return db.loads.Load() }

// Block makes loads wait until release is called.
func (db *FakeDB) Block() (release func()) {
	g := make(chan struct{})
	db.mu.Lock()
	db.gate = g
	db.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			db.mu.Lock()
			db.gate = nil
			db.mu.Unlock()
			close(g)
		})
	}
}

// FailLoads makes every load fail with err (counted in Loads), as a
// database that is down would; nil makes them succeed again.
func (db *FakeDB) FailLoads(err error) {
	db.mu.Lock()
	db.loadErr = err
	db.mu.Unlock()
}

// FailWrites makes every write fail with err, as a database that is down
// would; nil makes them succeed again.
func (db *FakeDB) FailWrites(err error) {
	db.mu.Lock()
	db.writeErr = err
	db.mu.Unlock()
}

// Load implements strategy.Loader.
func (db *FakeDB) Load(ctx context.Context, key string) ([]byte, bool, error) {
	db.loads.Add(1)
	db.mu.Lock()
	g, failure := db.gate, db.loadErr
	db.mu.Unlock()
	if failure != nil {
		return nil, false, failure
	}
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	v, ok := db.rows[key]
	return v, ok, nil
}
