package strategy

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Flushes: a namespace is emptied, or its keys under a prefix, in O(1),
// by epochs rather than by a scan of the store.
//
// Every flush takes the next sequence number of its namespace (on this
// node). Every entry is stamped with the sequence number current when its
// value was read (a load or refresh stamps before it reads the backend) or
// written (Entry.Epoch). A flush of the whole namespace raises the floor:
// entries stamped below it are invisible, treated as misses. A flush of a
// prefix adds a tombstone (prefix, sequence number): entries whose key
// starts with the prefix and that are stamped below the tombstone are
// invisible. The flush removes nothing; invisible entries are replaced by
// the next load or write of their key, go when they expire or are evicted,
// or are removed by SweepFlushed, which the node runs in the background
// after each flush.
//
// The write-behind journal is not touched: a miss after a flush reads the
// key's pending write before the database, as every miss does, so no
// acknowledged write is hidden.
//
// Cost per read: one atomic load and one comparison for an entry stamped
// at or after the newest flush (every entry written since). An older entry
// is compared with each tombstone newer than it (at most
// MaxPrefixTombstones strings.HasPrefix calls) or, when the prefixes share
// few lengths, looked up once per length in a map of the prefixes.

// MaxPrefixTombstones bounds the prefix tombstones of a namespace. One
// more folds the oldest into the floor: entries stamped before it are
// then all invisible, whatever their key — more than that prefix flush
// asked for, never less.
const MaxPrefixTombstones = 64

// flushState is a namespace's flush history; immutable once published.
type flushState struct {
	seq   uint32 // the newest flush; entries stamped now carry it
	floor uint32 // entries stamped below it are invisible
	tombs []tomb // stamped above floor, oldest first
	// byLen indexes tombs by prefix length when they share few lengths
	// (tenant:1:, tenant:2:, …): a read then costs one map lookup per
	// length instead of a comparison per tombstone. nil: scan tombs.
	byLen []lenGroup
}

type tomb struct {
	prefix string
	seq    uint32
}

// lenGroup holds the tombstones whose prefixes are n bytes long: the
// newest seq of each prefix, and the newest of all.
type lenGroup struct {
	n    int
	max  uint32
	seqs map[string]uint32
}

// index builds byLen when it pays: fewer than a third as many lengths as
// tombstones (a map lookup costs about three prefix comparisons).
func (s *flushState) index() {
	groups := map[int]*lenGroup{}
	for _, t := range s.tombs {
		g := groups[len(t.prefix)]
		if g == nil {
			g = &lenGroup{n: len(t.prefix), seqs: map[string]uint32{}}
			groups[len(t.prefix)] = g
		}
		g.seqs[t.prefix], g.max = t.seq, t.seq // tombs are oldest first
	}
	if 3*len(groups) >= len(s.tombs) {
		return
	}
	for _, g := range groups {
		s.byLen = append(s.byLen, *g)
	}
}

// visible reports whether an entry of key stamped epoch survives the
// flushes.
func (s *flushState) visible(key string, epoch uint32) bool {
	if epoch >= s.seq {
		return true
	}
	if epoch < s.floor {
		return false
	}
	if s.byLen != nil {
		for i := range s.byLen {
			g := &s.byLen[i]
			if g.max > epoch && g.n <= len(key) {
				if seq, ok := g.seqs[key[:g.n]]; ok && seq > epoch {
					return false
				}
			}
		}
		return true
	}
	for i := len(s.tombs) - 1; i >= 0 && s.tombs[i].seq > epoch; i-- {
		if strings.HasPrefix(key, s.tombs[i].prefix) {
			return false
		}
	}
	return true
}

// FlushResult describes a namespace's flush history after a Flush.
type FlushResult struct {
	// Epoch is the flush's sequence number on this node.
	Epoch uint32
	// PrefixTombstones is how many prefix flushes are remembered.
	PrefixTombstones int
	// Folded is true when this prefix flush found MaxPrefixTombstones
	// remembered and folded the oldest into a flush of every entry
	// stamped before it.
	Folded bool
}

// Flush hides every entry of the namespace cached before it or, with a
// non-empty prefix, every such entry whose key starts with prefix: reads
// miss them and load (read-through) or report not-found (cache-aside).
// It takes constant time, whatever the number of entries. Loads in flight
// are detached (later callers start fresh ones; their results are stamped
// before the flush and so hidden), and leases outstanding are invalidated
// (their holders may have read the database before the flush). Pending
// write-behind writes stay pending and are read by the misses.
//
// A prefix must be a valid key prefix: valid UTF-8, no longer than the
// namespace's MaxKeyBytes.
func (n *Namespace) Flush(prefix string) (FlushResult, error) {
	if prefix != "" {
		switch {
		case n.p.MaxKeyBytes > 0 && len(prefix) > n.p.MaxKeyBytes:
			return FlushResult{}, fmt.Errorf("%w: prefix is %d bytes, namespace %q allows keys of at most %d", ErrInvalidArgument, len(prefix), n.p.Name, n.p.MaxKeyBytes)
		case !utf8.ValidString(prefix):
			return FlushResult{}, fmt.Errorf("%w: prefix is not valid UTF-8", ErrInvalidArgument)
		}
	}
	n.flushMu.Lock()
	cur := n.flushes.Load()
	next := &flushState{seq: cur.seq + 1, floor: cur.floor}
	res := FlushResult{Epoch: next.seq}
	if prefix == "" {
		next.floor = next.seq
	} else {
		tombs := cur.tombs
		if len(tombs) == MaxPrefixTombstones {
			next.floor, tombs, res.Folded = tombs[0].seq, tombs[1:], true
		}
		next.tombs = append(append(make([]tomb, 0, len(tombs)+1), tombs...), tomb{prefix: strings.Clone(prefix), seq: next.seq})
		next.index()
	}
	res.PrefixTombstones = len(next.tombs)
	n.flushes.Store(next)
	n.flushMu.Unlock()

	n.epoch.Add(1) // new flight keys: callers from now on do not join older loads
	n.leases.InvalidateAll()
	n.c.flushes.Add(1)
	return res, nil
}

// stamp is the flush epoch to stamp on a value read or written now.
func (n *Namespace) stamp() uint32 { return n.flushes.Load().seq }

// visible reports whether e, the entry of key (without the namespace
// prefix), survives the namespace's flushes.
func (n *Namespace) visible(key string, e Entry) bool {
	return n.flushes.Load().visible(key, e.Epoch)
}

// SweepFlushed removes the entries of namespaces nss that their flushes hid,
// which otherwise stay until they are written again, expire or are
// evicted: the memory they hold is freed and the node's entry count
// (DBSIZE) drops. The namespaces must share one store, which it walks once
// for all of them (a FLUSHALL of many namespaces is one walk), so it is for
// after a flush, in the background. It returns how many entries it
// removed, 0 on a store that cannot sweep, and stops early, with what it
// removed so far, when ctx ends.
func SweepFlushed(ctx context.Context, nss ...*Namespace) int {
	if len(nss) == 0 {
		return 0
	}
	ss, ok := nss[0].store.(SweepStore)
	if !ok {
		return 0
	}
	byName := make(map[string]*Namespace, len(nss))
	for _, n := range nss {
		byName[n.p.Name] = n
	}
	// of returns the namespace of store key skey if it is one of nss, and
	// the key without its prefix.
	of := func(skey string) (*Namespace, string) {
		i := strings.IndexByte(skey, 0)
		if i < 0 {
			return nil, ""
		}
		return byName[skey[:i]], skey[i+1:]
	}
	return ss.DeleteIf(ctx, func(skey string) bool {
		n, _ := of(skey)
		return n != nil
	}, func(skey string, e Entry) bool {
		n, key := of(skey)
		return n != nil && !n.visible(key, e)
	})
}

// lookup returns the live, visible entry of skey; lookupWithLife also its
// life left.
func (n *Namespace) lookup(skey string) (Entry, bool) {
	e, _, ok := n.lookupWithLife(skey)
	return e, ok
}

func (n *Namespace) lookupWithLife(skey string) (Entry, time.Duration, bool) {
	e, life, ok := n.store.GetWithLife(skey)
	if !ok || !n.visible(skey[len(n.prefix):], e) {
		return Entry{}, 0, false
	}
	return e, life, true
}

// put stores e under skey unless the key holds a visible entry that
// keep(old) says to keep. An entry already hidden by a flush is not
// stored: it would only shadow the key until it expires.
func (n *Namespace) put(skey string, e Entry, keep func(old Entry) bool) {
	key := skey[len(n.prefix):]
	if !n.visible(key, e) {
		return
	}
	n.store.SetUnless(skey, e, func(old Entry) bool { return n.visible(key, old) && keep(old) })
}

// putIfAbsent stores e unless the key holds a visible entry.
func (n *Namespace) putIfAbsent(skey string, e Entry) {
	n.put(skey, e, func(Entry) bool { return true })
}

// putIfNewer stores e unless the key holds a visible entry of a higher
// version.
func (n *Namespace) putIfNewer(skey string, e Entry) {
	n.put(skey, e, func(old Entry) bool { return old.Version > e.Version })
}
