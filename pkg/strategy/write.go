package strategy

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Set writes value under key per the namespace's write mode, with ttl (the
// namespace TTL when ttl ≤ 0). The value slice is retained; the caller must
// not modify it afterwards.
func (n *Namespace) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := n.ValidateKey(key); err != nil {
		return err
	}
	if err := n.ValidateValue(value); err != nil {
		return err
	}
	n.c.sets.Add(1)
	return n.write(ctx, key, storeEntry(value, n.ttl(ttl), 0), Write{Key: key, Value: value})
}

// Delete removes key per the namespace's write mode.
func (n *Namespace) Delete(ctx context.Context, key string) error {
	if err := n.ValidateKey(key); err != nil {
		return err
	}
	n.c.deletes.Add(1)
	// Write-behind caches the deletion so reads need not consult the journal.
	e := Entry{TTL: max(n.p.NegativeTTL, n.ttl(0))}
	return n.write(ctx, key, e, Write{Key: key, Delete: true})
}

// write applies one Set or Delete: through the database, the journal, or the
// cache alone. The cache is updated last, and only with a version newer than
// what it holds, so concurrent writes of a key leave the newest one cached.
func (n *Namespace) write(ctx context.Context, key string, e Entry, w Write) error {
	skey := n.prefix + key
	if w.Version == 0 { // a leased Set takes its version under the lease check
		w.Version = n.versions.Now()
	}
	e.Version = w.Version
	n.bump(skey)
	defer n.changed(key) // after the store holds the change, whatever the outcome
	switch n.p.Write {
	case WriteThrough:
		wctx, span := n.startSpan(ctx, spanWrite, attrDelete.Bool(w.Delete))
		err := n.writer.Write(wctx, []Write{w})
		endSpan(span, err)
		if err != nil {
			// The database may or may not hold the write: keep no entry.
			n.store.Delete(skey)
			n.c.writeErrors.Add(1)
			return fmt.Errorf("%w: write to namespace %q: %w", ErrBackend, n.p.Name, err)
		}
		// Again after the commit: a load that read the row before the commit
		// (and after the first bump) must not cache it.
		n.bump(skey)
	case WriteBehind:
		actx, span := n.startSpan(ctx, spanAppend, attrDelete.Bool(w.Delete))
		err := n.journal.Append(actx, n.p.Name, w)
		endSpan(span, err)
		if errors.Is(err, ErrBackpressure) {
			n.c.backpressure.Add(1)
			return err
		}
		if errors.Is(err, ErrSuperseded) {
			return nil // a newer write of the key is pending and cached: keep it
		}
		if err != nil {
			n.c.writeErrors.Add(1)
			return fmt.Errorf("%w: journal write in namespace %q: %w", ErrBackend, n.p.Name, err)
		}
	default: // WriteAside
		if w.Delete {
			n.store.Delete(skey)
			return nil
		}
	}
	if w.Delete && n.p.Write == WriteThrough {
		n.store.Delete(skey)
		return nil
	}
	e.Epoch = n.stamp()
	n.putIfNewer(skey, e)
	return nil
}

// storeEntry is the cache entry of a written value.
func storeEntry(value []byte, ttl time.Duration, version uint64) Entry {
	return Entry{Value: value, Found: true, TTL: ttl, Version: version}
}
