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
	n.bump(skey)
	defer n.changed(key) // after the store holds the change, whatever the outcome
	switch n.p.Write {
	case WriteThrough:
		if err := n.writeThrough(ctx, &w); err != nil {
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
	e.Version = w.Version
	e.Epoch = n.stamp()
	n.putIfNewer(skey, e)
	return nil
}

// writeThrough writes w to the database. A write that changed nothing
// because the database holds the key at a newer version (one stamped by a
// clock that ran ahead, before a restart or on another node) is not
// acknowledged: the clock moves past the stored version and the write is
// tried once more with a new version. Ordering it after the stored write
// is right whatever that write was: it committed before this retry, and
// this write is acknowledged only after it. When the database cannot say
// which version it holds, or the retry loses again (a concurrent writer),
// the write fails with ErrStaleVersion.
func (n *Namespace) writeThrough(ctx context.Context, w *Write) error {
	err := n.writeOnce(ctx, *w)
	var stale *StaleVersionError
	if !errors.As(err, &stale) || len(stale.Writes) != 1 || stale.Writes[0].Stored == 0 {
		return err
	}
	n.versions.Seed(stale.Writes[0].Stored)
	w.Version = n.versions.Now()
	n.c.staleRetries.Add(1)
	return n.writeOnce(ctx, *w)
}

func (n *Namespace) writeOnce(ctx context.Context, w Write) error {
	wctx, span := n.startSpan(ctx, spanWrite, attrDelete.Bool(w.Delete))
	err := n.writer.Write(wctx, []Write{w})
	endSpan(span, err)
	return err
}

// storeEntry is the cache entry of a written value.
func storeEntry(value []byte, ttl time.Duration, version uint64) Entry {
	return Entry{Value: value, Found: true, TTL: ttl, Version: version}
}
