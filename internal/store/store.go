// Package store is a node's local cache memory: one bytes-bounded map of
// entries with a TTL each, built on otter v2 (W-TinyLFU eviction).
//
// The bound counts what an entry really costs the Go heap: its key and
// value as allocated (rounded up to Go's allocation size classes) plus
// EntryOverhead, measured, for otter's node, hash slot and bookkeeping
// (TestStore_ChargeCoversTheHeap checks it). The live heap of a full store
// is thus near MaxBytes whatever the mix of entry sizes; the process's
// RSS adds the garbage collector's headroom (see GOMEMLIMIT in the daemon).
// TTLs are counted on this node's clock only; no other node's clock
// matters.
package store

import (
	"context"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// EntryOverhead is what an entry costs the heap beyond the allocations of
// its key and value: otter's node (which holds the Entry and the key's
// string header), its slot in otter's hash table, and the eviction and
// expiry bookkeeping. Measured with runtime.MemStats after a GC on amd64,
// Go 1.26, otter v2: 150–175 bytes per entry, depending on how full the
// hash table is (TestStore_ChargeCoversTheHeap).
const EntryOverhead = 176

// Charge returns the bytes an entry with a key of keyLen bytes and a value
// of valueLen bytes (its capacity) costs: each allocation rounded up to its
// Go size class, plus EntryOverhead. It saturates at math.MaxUint32.
func Charge(keyLen, valueLen int) uint32 {
	return uint32(min(allocSize(keyLen)+allocSize(valueLen)+EntryOverhead, math.MaxUint32))
}

// sizeClasses are the Go allocator's small-object sizes (runtime
// sizeclasses.go); larger objects take whole 8 KiB pages.
var sizeClasses = [...]int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
	352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048, 2304, 2688, 3072,
	3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384,
	18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// allocSize is what an allocation of n bytes takes from the heap.
func allocSize(n int) int {
	if n <= 0 {
		return 0
	}
	if n > sizeClasses[len(sizeClasses)-1] {
		const page = 8192
		return (n + page - 1) / page * page
	}
	i, _ := slices.BinarySearch(sizeClasses[:], n)
	return sizeClasses[i]
}

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

func weigh(key string, e Entry) uint32 { return Charge(len(key), cap(e.Value)) }

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

// SetTTL gives key's entry a lifetime of ttl from now (≤ 0: no expiry) and
// returns it, unless there is no live entry or a not-found one. It
// implements strategy.TTLStore.
func (s *Store) SetTTL(key string, ttl time.Duration) (Entry, bool) {
	var out Entry
	ok := false
	s.c.Compute(key, func(old Entry, found bool) (Entry, otter.ComputeOp) {
		if !found || !old.Found {
			return old, otter.CancelOp
		}
		old.TTL = ttl
		out, ok = old, true
		return old, otter.WriteOp
	})
	return out, ok
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

// DeleteIf removes every live entry whose key satisfies match and that
// drop, given the entry, says to remove; it returns how many it removed.
// Each entry is tested and removed in one step with respect to writes of
// its key, so an entry written meanwhile is tested as it is then. It walks
// the whole store: for rare events (a flush's sweep); it stops early, with
// what it removed so far, when ctx ends. drop must not call the Store.
func (s *Store) DeleteIf(ctx context.Context, match func(key string) bool, drop func(key string, e Entry) bool) int {
	n, seen := 0, 0
	for k := range s.c.Keys() {
		if seen%1024 == 0 && ctx.Err() != nil {
			break
		}
		seen++
		if !match(k) {
			continue
		}
		s.c.Compute(k, func(old Entry, found bool) (Entry, otter.ComputeOp) {
			if found && drop(k, old) {
				n++
				return old, otter.InvalidateOp
			}
			return old, otter.CancelOp
		})
	}
	return n
}

// TakeFunc removes every live entry whose key satisfies take and hands
// each to fn with the life it had left; it returns how many it removed.
// Like DeleteFunc it walks the whole store, for rare events (a partition
// changing owner). fn must not call the Store.
func (s *Store) TakeFunc(take func(key string) bool, fn func(key string, e Entry, life time.Duration)) int {
	var victims []string
	for k := range s.c.Keys() {
		if take(k) {
			victims = append(victims, k)
		}
	}
	n := 0
	for _, k := range victims {
		e, ok := s.c.GetEntry(k)
		if !ok {
			continue
		}
		v, removed := s.c.Invalidate(k)
		if !removed {
			continue
		}
		fn(k, v, time.Duration(e.ExpiresAtNano-e.SnapshotAtNano))
		n++
	}
	return n
}
