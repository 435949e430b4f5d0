package engine

import (
	"sync"
	"time"

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// The hand-off fence. While a new table spreads, a partition that moves
// has two owners: its new owner routes by the new table and serves it,
// its previous owner routes by the old one and serves it too, and both
// acknowledge writes. Each may then cache a value older than one the
// other acknowledged, and neither can tell from its own entry. Once the
// previous owner confirms that it let the partition go (a Transfer answer
// that does not name it not_yet: it routes by a table without it, so it
// accepts no more writes of it), the new owner settles the partition:
//
//   - loads in flight will not cache (they may have read the database
//     before the previous owner's last writes); callers still join them,
//     so a key keeps one load at a time;
//   - it drops every entry of the partition it holds that it did not just
//     adopt from that answer. Adopt takes the previous owner's entry over
//     one this node loaded or looked up while both served the partition
//     (only the previous owner could change the key then, so its entry is
//     at least as new), and refuses it for a key written here. What is
//     dropped (a key written here, or one the answer did not carry) is
//     loaded again on its next read, from what decides between the two
//     owners' writes by version: the database's version-guarded row, and
//     for write-behind the newest of this node's pending write and the
//     previous owner's (handoffJournal). Only in read-through namespaces:
//     a namespace that does not load has nothing to reload from, and keeps
//     what it holds, as before the fence.
//
// Keys this node changed before it routed by the new table — a member
// already on the new table forwarded the op here, and a forwarded op is
// always served — leave no trace in the adoption (its entries of
// partitions it did not own are dropped when it installs the table, and a
// Delete leaves none): they are remembered here, by key, for the window,
// and the previous owner's entries of them are not adopted either.
//
// Why this and not a fence that forwards the partition to its previous
// owner until it confirms: a forwarded op is served by its receiver, so a
// fence would need a second hop, and the partition would stall for as long
// as the previous owner is slow. Why not versions alone: a loaded entry has
// no version, and a cache-aside Delete leaves nothing to compare. The cost
// here is a reload of the keys touched in the short window, once.

// maxForeign bounds the keys remembered as changed on partitions this node
// did not own; past it, nothing is adopted until the window has passed.
const maxForeign = 1 << 16

// foreignWrites are keys this node changed while its table gave their
// partition to another member (or it had no table yet).
type foreignWrites struct {
	mu   sync.Mutex
	keys map[string]time.Time // store key → remembered until
	full time.Time            // overflowed: every key counts until then
}

// add remembers skey until until.
func (f *foreignWrites) add(skey string, now, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[string]time.Time{}
	}
	if len(f.keys) >= maxForeign {
		for k, t := range f.keys {
			if now.After(t) {
				delete(f.keys, k)
			}
		}
		if len(f.keys) >= maxForeign {
			f.full = until
			clear(f.keys)
			return
		}
	}
	f.keys[skey] = until
}

// has reports whether skey was changed here, as a foreign key, recently.
func (f *foreignWrites) has(skey string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Before(f.full) {
		return true
	}
	t, ok := f.keys[skey]
	return ok && !now.After(t)
}

// noteForeign remembers a change of key of namespace ns when this node's
// table does not give it the key's partition (a forwarded op).
func (e *Engine) noteForeign(ns, key string) {
	skey := ring.Key(ns, key)
	if r := e.ring.Load(); r != nil && r.PartitionOwner(r.PartitionOf(skey)).Name == e.cfg.Self {
		return
	}
	now := e.cfg.Now()
	e.warm.foreign.add(skey, now, now.Add(e.cfg.Warm.Window))
}

// settle fences the partitions whose previous owner confirmed it let them
// go: loads in flight will not cache, and every entry of them not in adopted
// (store keys adopted from the confirming answer) in a read-through
// namespace is dropped, and its watchers told.
func (e *Engine) settle(parts map[int]bool, adopted map[string]bool) {
	if len(parts) == 0 {
		return
	}
	for _, ns := range e.namespaces {
		ns.UncacheLoads()
	}
	r := e.ring.Load()
	if r == nil {
		return
	}
	reload := map[string]bool{}
	for name, ns := range e.namespaces {
		reload[name] = ns.Policy().Read == strategy.ReadThrough
	}
	var dropped []string
	e.cfg.Store.TakeFunc(func(skey string) bool {
		return parts[r.PartitionOf(skey)] && !adopted[skey] && reload[namespaceOf(skey)]
	}, func(skey string, _ store.Entry, _ time.Duration) {
		dropped = append(dropped, skey)
	})
	if e.cfg.OnChange != nil {
		for _, skey := range dropped {
			ns := namespaceOf(skey)
			e.cfg.OnChange(ns, skey[len(ns)+1:])
		}
	}
	if len(dropped) > 0 {
		e.log.Info("dropped entries cached while a moved partition had two owners; they reload", "partitions", len(parts), "entries", len(dropped))
	}
}
