package strategy

import (
	"context"
	"sync"
	"sync/atomic"
)

// Warm hand-over: when a partition changes owner, its new owner takes the
// entries its previous owner had cached instead of loading them from the
// database. Two ways in, both guarded the same way:
//
//   - Adopt installs an entry pulled in bulk from the previous owner.
//   - A miss asks Deps.Previous before the Loader (after the write-behind
//     journal), inside the key's single flight, so concurrent misses of a
//     moved key cost the previous owner one call and the database none.
//
// The entries describe the key as the previous owner saw it when it lost
// the partition, so anything this node did to the key since is newer: a
// key written here (Set, Delete, any write that bumps it) after
// BeginAdopt is never adopted, whether or not the write left an entry
// (a cache-aside Delete leaves none). Adopted entries are stamped with the
// flush epoch of BeginAdopt, so a flush here after the change hides them,
// and keep their version, their kind (a not-found stays a not-found) and
// the life they had left (their TTL).

// Previous is the seam to the previous owners of moved partitions. Held
// returns the entry a previous owner holds for key of namespace ns, with
// its life left as TTL (≤ 0: none): the one this node holds itself for
// the key's new owner (a member that routes by an older table sent the
// miss here), else, with remote, the one the previous owner holds when a
// transfer of the key's partition here is open; here says it was this
// node's own (the answer is then not cached: this node does not own the
// key). Open reports, without a call, whether either may answer. Any
// failure is reported as nothing held. Called from loads.
type Previous interface {
	Open(ns, key string) bool
	Held(ctx context.Context, ns, key string, remote bool) (e Entry, here, ok bool)
}

// maxTouched bounds the keys remembered as written while adoptions run;
// past it every adoption is refused until the last one ends.
const maxTouched = 1 << 16

// adoption is the state of the adoptions in progress; nil when none.
type adoption struct {
	epoch    uint32 // the flush epoch when the first began
	refs     int    // guarded by Namespace.adoptMu
	n        atomic.Int64
	overflow atomic.Bool
	// keys[i] holds the store keys of stripe i written since, guarded by
	// genMu[i].
	keys [generations]map[string]struct{}
}

// touch records a write of skey; the caller holds genMu[i].
func (a *adoption) touch(i uint64, skey string) {
	if a.overflow.Load() {
		return
	}
	if a.keys[i] == nil {
		a.keys[i] = map[string]struct{}{}
	}
	if _, ok := a.keys[i][skey]; ok {
		return
	}
	if a.n.Add(1) > maxTouched {
		a.overflow.Store(true)
		return
	}
	a.keys[i][skey] = struct{}{}
}

// touched reports whether skey was written since; the caller holds
// genMu[i].
func (a *adoption) touched(i uint64, skey string) bool {
	if a.overflow.Load() {
		return true
	}
	_, ok := a.keys[i][skey]
	return ok
}

type adoptState struct {
	mu  sync.Mutex
	cur atomic.Pointer[adoption]
}

// BeginAdopt starts remembering which keys are written here, so entries
// of the previous owners of partitions this node just gained never
// overwrite them. Call it before the node serves the gained partitions;
// every BeginAdopt needs one EndAdopt. Overlapping adoptions share one
// record (the first one's epoch and keys): more is refused, never less.
func (n *Namespace) BeginAdopt() {
	n.adopt.mu.Lock()
	defer n.adopt.mu.Unlock()
	if a := n.adopt.cur.Load(); a != nil {
		a.refs++
		return
	}
	a := &adoption{epoch: n.stamp(), refs: 1}
	n.adopt.cur.Store(a)
}

// EndAdopt ends one BeginAdopt; after the last, Adopt refuses everything.
func (n *Namespace) EndAdopt() {
	n.adopt.mu.Lock()
	defer n.adopt.mu.Unlock()
	a := n.adopt.cur.Load()
	if a == nil {
		return
	}
	if a.refs--; a.refs == 0 {
		// Under every stripe lock, so no touch is still writing a.keys.
		for i := range n.genMu {
			n.genMu[i].Lock()
		}
		n.adopt.cur.Store(nil)
		for i := range n.genMu {
			n.genMu[i].Unlock()
		}
	}
}

// Adopt caches e, key's entry as a previous owner held it (e.TTL its life
// left), unless no adoption is running, the key was written here since it
// began, or the key holds a visible entry of a higher version. It reports
// whether it stored.
//
// An entry this node loaded or looked up since the change, not written,
// is replaced: while both served the partition, only the previous owner
// could change the key, so its entry is at least as new (a load may have
// read the database before the previous owner's last write). The hand-off
// fence (internal/engine/fence.go) drops what was not adopted; keeping
// the previous owner's entry instead spares the database a reload of
// every key read in the window.
func (n *Namespace) Adopt(key string, e Entry) bool {
	a := n.adopt.cur.Load()
	if a == nil {
		return false
	}
	skey := n.prefix + key
	i := n.stripe(skey)
	n.genMu[i].Lock()
	defer n.genMu[i].Unlock()
	if n.adopt.cur.Load() != a || a.touched(i, skey) {
		return false
	}
	e.Epoch = a.epoch
	stored := false
	if n.visible(key, e) {
		stored = n.store.SetUnless(skey, e, func(old Entry) bool { return n.visible(key, old) && old.Version > e.Version })
	}
	if stored {
		n.c.adopted.Add(1)
	}
	return stored
}

// Visible reports whether e, cached under store key skey of this
// namespace, survives the namespace's flushes: a node hands over only
// entries its own flushes have not hidden.
func (n *Namespace) Visible(skey string, e Entry) bool {
	if len(skey) < len(n.prefix) {
		return false
	}
	return n.visible(skey[len(n.prefix):], e)
}

// fromPrevious asks Deps.Previous for key on a miss, unless the key was
// written here since the adoption began. It runs inside the key's single
// flight, after the journal and before the Loader.
func (n *Namespace) fromPrevious(ctx context.Context, key string) (loadResult, bool) {
	if n.previous == nil || !n.previous.Open(n.p.Name, key) {
		return loadResult{}, false
	}
	// Another node's entry only while an adoption runs, and not for a key
	// written here since it began.
	skey := n.prefix + key
	i := n.stripe(skey)
	n.genMu[i].Lock()
	a := n.adopt.cur.Load()
	remote := a != nil && !a.touched(i, skey)
	n.genMu[i].Unlock()
	e, here, ok := n.previous.Held(ctx, n.p.Name, key, remote)
	if !ok {
		return loadResult{}, false
	}
	n.c.previousHits.Add(1)
	return loadResult{value: e.Value, found: e.Found, version: e.Version, life: e.TTL, held: true, heldCost: e.Cost, noCache: here}, true
}

// awaitsPrevious reports whether a miss of key in a namespace that never
// loads should still ask a previous owner.
func (n *Namespace) awaitsPrevious(key string) bool {
	return n.previous != nil && n.previous.Open(n.p.Name, key)
}
