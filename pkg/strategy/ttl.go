package strategy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The operations in this file serve Redis commands that plain Get, Set and
// Delete cannot: a key's remaining lifetime, a change of it, a Set with
// conditions, a delete that returns what it removed.
//
// Lifetimes are cache lifetimes: a TTL lives in the owner's memory only.
// The database behind a write-through or write-behind namespace has no
// TTL, and a read-through namespace loads an expired key again.
//
// SetIf and GetDel check and write under a per-stripe lock that orders them
// among themselves; their write's version is taken at the check, so a plain
// Set that starts after the check wins over them, as if it came later. A
// plain Set already in flight (not yet in memory) when the check runs is
// not seen by the check.

// ErrNoTTLStore marks a TTL change on a store that cannot change one.
var ErrNoTTLStore = errors.New("the store cannot change an entry's lifetime")

// TTLStore is a Store that can give an entry a new lifetime in place.
// ringcache's internal/store is one.
type TTLStore interface {
	Store
	// SetTTL gives key's entry a lifetime of ttl from now (≤ 0: no expiry)
	// and returns it, unless there is no live entry or a not-found one.
	SetTTL(key string, ttl time.Duration) (Entry, bool)
}

// condLocks order the conditional writes (SetIf, GetDel) of a stripe.
type condLocks [generations]sync.Mutex

// SetOptions are the conditions and options of SetIf.
type SetOptions struct {
	// NX applies the Set only when the key does not exist, XX only when it
	// does; not both.
	NX, XX bool
	// KeepTTL keeps the entry's remaining lifetime instead of the ttl given.
	KeepTTL bool
}

// ReadsWait reports whether reading a key not in memory may wait on I/O: a
// read-through load, or a look at the write-behind journal.
func (n *Namespace) ReadsWait() bool { return n.p.Read == ReadThrough || n.journal != nil }

// TTL returns the remaining lifetime of key's entry, 0 when it never
// expires, and whether the key exists; a miss in a namespace that loads is
// loaded first.
func (n *Namespace) TTL(ctx context.Context, key string) (time.Duration, bool, error) {
	if err := n.ValidateKey(key); err != nil {
		return 0, false, err
	}
	skey := n.prefix + key
	e, life, ok := n.lookupWithLife(skey)
	if !ok && n.ReadsWait() {
		_, found, err := n.loadMiss(ctx, key, skey)
		if err != nil {
			return 0, false, err
		}
		if e, life, ok = n.lookupWithLife(skey); !ok {
			// Loaded but not cached (a write came in between): it lives a
			// namespace TTL once a Get caches it.
			return n.p.TTL, found, nil
		}
	}
	switch {
	case !ok || !e.Found:
		return 0, false, nil
	case e.TTL <= 0:
		return 0, true, nil
	case life <= 0:
		return 0, false, nil
	}
	return life, true, nil
}

// Expire gives key's entry a lifetime of ttl from now, or none when ttl ≤ 0,
// and returns its value and whether the key exists. A miss in a namespace
// that loads is loaded first.
func (n *Namespace) Expire(ctx context.Context, key string, ttl time.Duration) ([]byte, bool, error) {
	if err := n.ValidateKey(key); err != nil {
		return nil, false, err
	}
	ts, ok := n.store.(TTLStore)
	if !ok {
		return nil, false, fmt.Errorf("%w (namespace %q)", ErrNoTTLStore, n.p.Name)
	}
	skey := n.prefix + key
	if _, ok := n.lookup(skey); !ok {
		if !n.ReadsWait() { // missing, or hidden by a flush: leave its lifetime alone
			return nil, false, nil
		}
		if _, _, err := n.loadMiss(ctx, key, skey); err != nil {
			return nil, false, err
		}
	}
	e, ok := ts.SetTTL(skey, ttl)
	if ok && !n.visible(key, e) { // flushed: a miss, whose lifetime does not matter
		return nil, false, nil
	}
	return e.Value, ok, nil
}

// SetIf is Set with Redis SET's conditions: it returns the key's previous
// value and whether it existed, and applies the Set unless opts.NX finds the
// key or opts.XX does not (then it changes nothing). The previous value is
// read from memory, or loaded in a namespace that loads.
func (n *Namespace) SetIf(ctx context.Context, key string, value []byte, ttl time.Duration, opts SetOptions) (old []byte, oldFound bool, err error) {
	if err := n.ValidateKey(key); err != nil {
		return nil, false, err
	}
	if err := n.ValidateValue(value); err != nil {
		return nil, false, err
	}
	if opts.NX && opts.XX {
		return nil, false, fmt.Errorf("%w: NX and XX exclude each other", ErrInvalidArgument)
	}
	skey := n.prefix + key
	mu := &n.cond[n.stripe(skey)]
	mu.Lock()
	defer mu.Unlock()
	version := n.versions.Now() // see the file comment
	old, oldFound, err = n.current(ctx, key, skey, false)
	if err != nil {
		return nil, false, err
	}
	if opts.NX && oldFound || opts.XX && !oldFound {
		return old, oldFound, nil
	}
	life := n.ttl(ttl)
	if opts.KeepTTL {
		if e, left, ok := n.lookupWithLife(skey); ok && e.Found {
			life = 0 // an entry that never expires keeps never expiring
			if e.TTL > 0 {
				life = max(left, time.Millisecond)
			}
		}
	}
	n.c.sets.Add(1)
	err = n.write(ctx, key, storeEntry(value, life, 0), Write{Key: key, Value: value, Version: version})
	return old, oldFound, err
}

// GetDel deletes key under the namespace's write mode and returns the value
// it had and whether it existed. With memoryOnly, whether it existed is
// judged by memory and the write-behind journal, without loading from the
// database, and the delete still reaches the database of a namespace that
// writes one.
func (n *Namespace) GetDel(ctx context.Context, key string, memoryOnly bool) ([]byte, bool, error) {
	if err := n.ValidateKey(key); err != nil {
		return nil, false, err
	}
	skey := n.prefix + key
	mu := &n.cond[n.stripe(skey)]
	mu.Lock()
	defer mu.Unlock()
	version := n.versions.Now()
	old, found, err := n.current(ctx, key, skey, memoryOnly)
	if err != nil {
		return nil, false, err
	}
	if !found && n.p.Write == WriteAside {
		return nil, false, nil // nothing to delete anywhere
	}
	n.c.deletes.Add(1)
	e := Entry{TTL: max(n.p.NegativeTTL, n.ttl(0))}
	if err := n.write(ctx, key, e, Write{Key: key, Delete: true, Version: version}); err != nil {
		return nil, false, err
	}
	return old, found, nil
}

// current returns key's value as a read sees it, without counting a Get:
// memory, else (unless memoryOnly) a load, else with memoryOnly the
// write-behind journal.
func (n *Namespace) current(ctx context.Context, key, skey string, memoryOnly bool) ([]byte, bool, error) {
	if e, ok := n.lookup(skey); ok {
		return e.Value, e.Found, nil
	}
	switch {
	case !memoryOnly && n.ReadsWait():
		return n.loadMiss(ctx, key, skey)
	case memoryOnly && n.journal != nil:
		w, ok, err := n.journal.Pending(ctx, n.p.Name, key)
		if err != nil {
			return nil, false, fmt.Errorf("%w: read the write-behind journal of namespace %q: %w", ErrBackend, n.p.Name, err)
		}
		return w.Value, ok && !w.Delete, nil
	}
	return nil, false, nil
}

// loadMiss loads a key these operations found missing from memory, counted
// as a Get that missed.
func (n *Namespace) loadMiss(ctx context.Context, key, skey string) ([]byte, bool, error) {
	n.c.gets.Add(1)
	n.c.misses.Add(1)
	return n.load(ctx, key, skey)
}
