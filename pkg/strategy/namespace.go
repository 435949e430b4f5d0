// Package strategy holds the read and write policies of a namespace and the
// guards that keep them safe: one load per key at a time (stampede
// protection), cached not-found results (penetration guard), TTL jitter (herd
// guard) and input limits.
//
// A Namespace runs on a key's owner. It does not route: the node decides
// which node owns a key and calls the owner's Namespace.
package strategy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/singleflight"

	"github.com/ringcache/ringcache/internal/store"
)

// ReadMode says what a miss does.
type ReadMode int

// Read modes.
const (
	// ReadAside: a miss returns not-found; the application loads and Sets.
	ReadAside ReadMode = iota
	// ReadThrough: a miss is loaded from the backend by the owner.
	ReadThrough
)

// Policy configures a Namespace. Durations are wall-clock lengths on the
// owner's clock.
type Policy struct {
	Name string
	Read ReadMode
	// TTL is the lifetime of an entry; ≤ 0 means no expiry.
	TTL time.Duration
	// TTLJitter shortens each entry's TTL by a random fraction in
	// [0, TTLJitter) so entries written together do not expire together.
	TTLJitter float64
	// NegativeTTL is how long a not-found load result is cached; 0 disables
	// negative caching.
	NegativeTTL time.Duration
	// LoadTimeout bounds one backend load. The load is shared by every
	// waiting caller, so it does not end when one caller gives up.
	LoadTimeout   time.Duration
	MaxKeyBytes   int
	MaxValueBytes int
}

// Stats are a Namespace's counters since start.
type Stats struct {
	Gets, Hits, Misses  uint64
	Loads, LoadsDeduped uint64
	LoadErrors          uint64
	NegativeHits        uint64
	Sets, Deletes       uint64
	LoadsWaiting        int64 // callers waiting on a load right now
}

type counters struct {
	gets, hits, misses, loads, deduped, loadErrors, negHits, sets, deletes atomic.Uint64
	waiting                                                                atomic.Int64
}

// generations is the number of write-generation stripes; see Namespace.gen.
const generations = 256

// Namespace serves one keyspace on its owner. It is safe for concurrent use.
type Namespace struct {
	p      Policy
	prefix string // store key prefix: name + 0x00
	store  *store.Store
	loader Loader
	flight singleflight.Group
	c      counters
	// gen counts writes per key stripe. A load records its stripe's
	// generation before reading the backend and caches its result only if
	// no Set or Delete touched the stripe meanwhile, so a slow load never
	// overwrites a newer write with an older database value.
	gen [generations]atomic.Uint64
	// genMu[i] makes a load's check of gen[i] and its caching one step
	// with respect to a write's bump of gen[i]; without it a Delete could
	// land between the check and the SetIfAbsent and be undone.
	genMu [generations]sync.Mutex
}

// New returns a Namespace that caches in st and loads misses with loader,
// which may be nil for a ReadAside namespace.
func New(p Policy, st *store.Store, loader Loader) (*Namespace, error) {
	if p.Read == ReadThrough && loader == nil {
		return nil, fmt.Errorf("namespace %q: %w: read-through needs a loader", p.Name, ErrNoBackend)
	}
	if p.LoadTimeout <= 0 {
		p.LoadTimeout = 10 * time.Second
	}
	return &Namespace{p: p, prefix: p.Name + "\x00", store: st, loader: loader}, nil
}

// StoreKey is the key under which namespace ns caches key: the namespace, a
// zero byte, and the key. Nodes hash the same string to route, so a store
// key also tells which partition its entry belongs to.
func StoreKey(ns, key string) string { return ns + "\x00" + key }

// Policy returns the namespace's policy.
func (n *Namespace) Policy() Policy { return n.p }

// ValidateKey checks a key against the namespace's limits.
func (n *Namespace) ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrInvalidArgument)
	case n.p.MaxKeyBytes > 0 && len(key) > n.p.MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes, namespace %q allows at most %d", ErrInvalidArgument, len(key), n.p.Name, n.p.MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidArgument)
	}
	return nil
}

// ValidateValue checks a value against the namespace's limits.
func (n *Namespace) ValidateValue(value []byte) error {
	if n.p.MaxValueBytes > 0 && len(value) > n.p.MaxValueBytes {
		return fmt.Errorf("%w: value is %d bytes, namespace %q allows at most %d", ErrInvalidArgument, len(value), n.p.Name, n.p.MaxValueBytes)
	}
	return nil
}

// Get returns the key's value. On a miss in a read-through namespace it loads
// from the backend, sharing one load among all concurrent callers of the key;
// a caller whose ctx ends stops waiting without cancelling the shared load.
// The returned slice must not be modified.
func (n *Namespace) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if err := n.ValidateKey(key); err != nil {
		return nil, false, err
	}
	n.c.gets.Add(1)
	skey := n.prefix + key
	if e, ok := n.store.Get(skey); ok {
		if !e.Found {
			n.c.negHits.Add(1)
		}
		n.c.hits.Add(1)
		return e.Value, e.Found, nil
	}
	n.c.misses.Add(1)
	if n.p.Read != ReadThrough {
		return nil, false, nil
	}
	return n.load(ctx, key, skey)
}

type loadResult struct {
	value []byte
	found bool
}

func (n *Namespace) load(ctx context.Context, key, skey string) ([]byte, bool, error) {
	// leader is set by the function only in the caller that runs the load;
	// the channel send that follows it orders the write before our read.
	// (Result.Shared is true for every caller of a shared load, the leader
	// included, so it cannot count deduplicated callers.)
	leader := false
	ch := n.flight.DoChan(skey, func() (_ any, err error) {
		leader = true
		n.c.loads.Add(1)
		defer func() {
			// singleflight re-panics on a goroutine of its own, which would
			// take the node down: turn a panicking loader into an error.
			if p := recover(); p != nil {
				n.c.loadErrors.Add(1)
				err = fmt.Errorf("%w: load %q from namespace %q panicked: %v", ErrBackend, key, n.p.Name, p)
			}
		}()
		i := n.stripe(skey)
		stripe := &n.gen[i]
		gen := stripe.Load()
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.p.LoadTimeout)
		defer cancel()
		v, found, err := n.loader.Load(lctx, key)
		if err != nil {
			n.c.loadErrors.Add(1)
			return nil, fmt.Errorf("%w: load %q from namespace %q: %w", ErrBackend, key, n.p.Name, err)
		}
		n.genMu[i].Lock()
		if stripe.Load() == gen {
			if found {
				n.store.SetIfAbsent(skey, store.Entry{Value: v, Found: true, TTL: n.ttl(0)})
			} else if n.p.NegativeTTL > 0 {
				n.store.SetIfAbsent(skey, store.Entry{TTL: n.p.NegativeTTL})
			}
		}
		n.genMu[i].Unlock()
		return loadResult{v, found}, nil
	})
	// Counted once DoChan has registered the caller, so LoadsWaiting == n
	// means n callers are attached to loads.
	n.c.waiting.Add(1)
	select {
	case r := <-ch:
		n.c.waiting.Add(-1)
		if !leader {
			n.c.deduped.Add(1)
		}
		if r.Err != nil {
			return nil, false, r.Err
		}
		lr := r.Val.(loadResult)
		return lr.value, lr.found, nil
	case <-ctx.Done():
		n.c.waiting.Add(-1)
		return nil, false, ctx.Err()
	}
}

func (n *Namespace) stripe(skey string) uint64 {
	return xxhash.Sum64String(skey) % generations
}

// bump records a write to skey's stripe before the write reaches the store,
// so that a load in flight does not cache an older value over it.
//
// It also detaches the key's in-flight load, if any: callers that arrive
// after the write start a fresh load instead of joining one that may have
// read the database before the write.
func (n *Namespace) bump(skey string) {
	i := n.stripe(skey)
	n.genMu[i].Lock()
	n.gen[i].Add(1)
	n.flight.Forget(skey)
	n.genMu[i].Unlock()
}

// ttl returns the lifetime for a new entry: the caller's override if
// positive, kept exact; else the namespace TTL shortened by up to TTLJitter.
func (n *Namespace) ttl(override time.Duration) time.Duration {
	if override > 0 {
		return override
	}
	t := n.p.TTL
	if t > 0 && n.p.TTLJitter > 0 {
		t -= time.Duration(float64(t) * n.p.TTLJitter * rand.Float64())
	}
	return t
}

// Set caches value under key for ttl (the namespace TTL when ttl ≤ 0).
// The value slice is retained; the caller must not modify it afterwards.
func (n *Namespace) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := n.ValidateKey(key); err != nil {
		return err
	}
	if err := n.ValidateValue(value); err != nil {
		return err
	}
	n.c.sets.Add(1)
	skey := n.prefix + key
	n.bump(skey)
	n.store.Set(skey, store.Entry{Value: value, Found: true, TTL: n.ttl(ttl)})
	return nil
}

// Delete removes key from the cache.
func (n *Namespace) Delete(_ context.Context, key string) error {
	if err := n.ValidateKey(key); err != nil {
		return err
	}
	n.c.deletes.Add(1)
	skey := n.prefix + key
	n.bump(skey)
	n.store.Delete(skey)
	return nil
}

// Stats returns a snapshot of the counters.
func (n *Namespace) Stats() Stats {
	return Stats{
		Gets: n.c.gets.Load(), Hits: n.c.hits.Load(), Misses: n.c.misses.Load(),
		Loads: n.c.loads.Load(), LoadsDeduped: n.c.deduped.Load(), LoadErrors: n.c.loadErrors.Load(),
		NegativeHits: n.c.negHits.Load(), Sets: n.c.sets.Load(), Deletes: n.c.deletes.Load(),
		LoadsWaiting: n.c.waiting.Load(),
	}
}
