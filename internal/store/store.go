// Package store is a node's local cache memory: one bytes-bounded map of
// entries with a TTL each, built on otter v2 (W-TinyLFU eviction).
//
// The bound counts key and value bytes plus a fixed per-entry overhead, so
// memory stays near MaxBytes whatever the mix of entry sizes. TTLs are counted
// on this node's clock only; no other node's clock matters.
package store

import (
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// EntryOverhead approximates the bytes an entry costs beyond its key and
// value (otter node, slice headers, expiry bookkeeping).
const EntryOverhead = 96

// Entry is one cached result; see strategy.Entry. The Store implements
// strategy.Store.
type Entry = strategy.Entry

// Clock is the time source for expiry (otter.Clock). Tests inject a fake.
type Clock = otter.Clock

// Config sizes a Store.
type Config struct {
	// MaxBytes bounds the weighed size of all entries. Required.
	MaxBytes uint64
	// Clock defaults to the wall clock.
	Clock Clock
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	Entries   uint64
	Bytes     uint64
	MaxBytes  uint64
	Evictions uint64
}

// Store is safe for concurrent use.
type Store struct {
	c         *otter.Cache[string, Entry]
	evictions atomic.Uint64
}

// New creates a Store.
func New(cfg Config) (*Store, error) {
	s := &Store{}
	c, err := otter.New(&otter.Options[string, Entry]{
		MaximumWeight:    cfg.MaxBytes,
		Weigher:          weigh,
		ExpiryCalculator: expiry{},
		Clock:            cfg.Clock,
		Logger:           &otter.NoopLogger{},
		// OnAtomicDeletion runs synchronously under the bucket lock, which
		// suits a counter: OnDeletion would start a goroutine per eviction
		// and leave Evictions behind the evictions already done.
		OnAtomicDeletion: func(e otter.DeletionEvent[string, Entry]) {
			if e.Cause == otter.CauseOverflow {
				s.evictions.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	s.c = c
	return s, nil
}

func weigh(key string, e Entry) uint32 {
	return uint32(len(key) + len(e.Value) + EntryOverhead)
}

// maxTTL stands for "no expiry" (otter needs a finite duration).
const maxTTL = 100 * 365 * 24 * time.Hour

type expiry struct{}

func ttl(e Entry) time.Duration {
	if e.TTL <= 0 {
		return maxTTL
	}
	return e.TTL
}

func (expiry) ExpireAfterCreate(e otter.Entry[string, Entry]) time.Duration { return ttl(e.Value) }
func (expiry) ExpireAfterUpdate(e otter.Entry[string, Entry], _ Entry) time.Duration {
	return ttl(e.Value)
}
func (expiry) ExpireAfterRead(e otter.Entry[string, Entry]) time.Duration { return e.ExpiresAfter() }

// Get returns the live entry for key.
func (s *Store) Get(key string) (Entry, bool) { return s.c.GetIfPresent(key) }

// GetWithLife returns the live entry for key and how long it has left to live.
func (s *Store) GetWithLife(key string) (Entry, time.Duration, bool) {
	e, ok := s.c.GetEntry(key)
	if !ok {
		return Entry{}, 0, false
	}
	return e.Value, time.Duration(e.ExpiresAtNano - e.SnapshotAtNano), true
}

// SetIfNewer stores e under key unless the key holds an entry of a higher
// Version, and reports whether it stored. Concurrent writers of one key thus
// leave the newest write in the store whatever order they finish in.
func (s *Store) SetIfNewer(key string, e Entry) bool {
	stored := false
	s.c.Compute(key, func(old Entry, found bool) (Entry, otter.ComputeOp) {
		if found && old.Version > e.Version {
			return old, otter.CancelOp
		}
		stored = true
		return e, otter.WriteOp
	})
	return stored
}

// SetUnless stores e under key unless the key has a live entry old for
// which keep(old) is true, and reports whether it stored. keep runs under
// the lock of the key's bucket: it must not call the Store.
func (s *Store) SetUnless(key string, e Entry, keep func(old Entry) bool) bool {
	stored := false
	s.c.Compute(key, func(old Entry, found bool) (Entry, otter.ComputeOp) {
		if found && keep(old) {
			return old, otter.CancelOp
		}
		stored = true
		return e, otter.WriteOp
	})
	return stored
}

// Set stores e under key, replacing any entry.
func (s *Store) Set(key string, e Entry) { s.c.Set(key, e) }

// SetIfAbsent stores e unless key already has a live entry, and reports
// whether it stored.
func (s *Store) SetIfAbsent(key string, e Entry) bool {
	_, stored := s.c.SetIfAbsent(key, e)
	return stored
}

// Delete removes key.
func (s *Store) Delete(key string) { s.c.Invalidate(key) }

// Stats returns current counters. Entries and Bytes are estimates that may
// include entries whose expiry is not yet processed.
func (s *Store) Stats() Stats {
	return Stats{
		Entries:   uint64(s.c.EstimatedSize()),
		Bytes:     s.c.WeightedSize(),
		MaxBytes:  s.c.GetMaximum(),
		Evictions: s.evictions.Load(),
	}
}

// Close stops the store's background goroutines.
func (s *Store) Close() { s.c.StopAllGoroutines() }

// DeleteFunc removes every entry whose key satisfies drop and returns how
// many it removed. It walks the whole store: use it for rare events such as
// an ownership change, not per request.
func (s *Store) DeleteFunc(drop func(key string) bool) int {
	var victims []string
	for k := range s.c.Keys() {
		if drop(k) {
			victims = append(victims, k)
		}
	}
	for _, k := range victims {
		s.c.Invalidate(k)
	}
	return len(victims)
}
