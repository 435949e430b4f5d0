package clustertest

import (
	"context"
	"sync"
	"sync/atomic"
)

// FakeDB is an in-memory backend that counts loads. Block holds every load
// until the returned release is called, so a test can pile callers onto one
// load deterministically.
type FakeDB struct {
	mu    sync.Mutex
	rows  map[string][]byte
	gate  chan struct{}
	loads atomic.Int64
}

// NewFakeDB returns an empty FakeDB.
func NewFakeDB() *FakeDB { return &FakeDB{rows: map[string][]byte{}} }

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

// Load implements strategy.Loader.
func (db *FakeDB) Load(ctx context.Context, key string) ([]byte, bool, error) {
	db.loads.Add(1)
	db.mu.Lock()
	g := db.gate
	db.mu.Unlock()
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
