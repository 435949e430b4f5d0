package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Merge is told, before the ring that brings them back, of members that
// return to this node's ring after they left it without a graceful leave:
// a partition healed, or a crashed node restarted. While this node's ring
// lacked them, they may have served writes of any partition (each side of
// a partition owns every key in its own ring), so no cached entry can be
// trusted: Merge drops them all, rather than revalidate each by version,
// because a cache-aside namespace has no source of truth to revalidate
// against and a dropped entry can never be served stale. Loads in flight
// are detached, the hot cache is emptied, and for HandoffWindow every miss
// in a write-behind namespace also asks the returning members for a
// pending write of the key (they may hold acknowledged writes that have
// not reached the database), the newest version winning.
//
// The cost is a cold cache after a heal; a crash-restart costs the same,
// conservatively, since a node cannot tell a crashed peer from a cut-off
// one. A graceful leave and return (a rolling restart) is not a merge.
func (e *Engine) Merge(returning []ring.Member) {
	if len(returning) == 0 {
		return
	}
	e.addHandoffs(returning)
	e.forgetAll("members returned to the ring without a graceful leave (a healed partition or a restart); dropped every cached entry, since they may have written any key meanwhile", returning)
}

// Rejoined is Merge on a node that finds, in the table r it is about to
// route by, that the cluster routed by a table without it meanwhile (the
// one r was computed from): it was paused, or cut off, past its failure
// detection, while its own table never changed, and other members may
// have written any of its keys. It drops what it cached before it serves
// by r, rather than wait for a returning peer's Announce, which is late or
// lost under load; an Announce that comes for r is then ignored
// (MergedFrom). The previous owners of what it takes back are asked for
// pending writes as after any move (recordHandoffs).
func (e *Engine) Rejoined(r *ring.Ring) {
	others := e.others(r)
	if len(others) == 0 {
		return
	}
	e.rejoinedAt.Store(r.Version())
	e.forgetAll("this node is back in a table computed from one without it (it was paused or cut off); dropped every cached entry, since others may have written any key meanwhile", others)
}

// forgetAll drops every cached entry and detaches the loads in flight,
// logs why (members: who may have written meanwhile), and tells
// Config.Merged.
func (e *Engine) forgetAll(why string, members []ring.Member) {
	for _, ns := range e.namespaces {
		ns.ForgetLoads()
	}
	dropped := e.cfg.Store.DeleteFunc(func(string) bool { return true })
	// Entries held for new owners (warm hand-over) are as untrustworthy:
	// served to a stale-routed miss or pulled, they would bring back what
	// the returning members overwrote.
	dropped += e.warm.out.empty()
	if e.cfg.Hot != nil {
		e.cfg.Hot.Reset()
	}
	// A warning when it cost a cold cache; with nothing cached (nodes
	// started together find each other through tables that include and
	// drop a member), nothing was lost.
	level := slog.LevelWarn
	if dropped == 0 {
		level = slog.LevelInfo
	}
	e.log.Log(context.Background(), level, why, "members", names(members), "entries", dropped)
	if e.cfg.Merged != nil {
		e.cfg.Merged()
	}
}

func names(ms []ring.Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

// Superseded is told by the write-behind flusher that this node's pending
// write of key, at version, met a newer row in the database: a member that
// returned wrote the key later, on its side of a partition, and flushed it
// first. Until the flush, reads here answered from the pending write (the
// returning member no longer held its own as pending to compare), and may
// have cached it; that entry is dropped, so the next read loads the newer
// row (strategy.Namespace.Superseded). Merged kicks the flush, so the
// window is the time a flush takes. The record's copies on its replicas go
// too: kept, they would be served and flushed again should this node
// depart before its replicas' sweep asked after them.
func (e *Engine) Superseded(ns, key string, version uint64) {
	if n, ok := e.namespaces[ns]; ok {
		n.Superseded(key, version)
	}
	if e.repl != nil {
		e.repl.flushed(ns, []strategy.Write{{Key: key, Version: version}})
	}
}

// announceTimeout bounds one Merged notification.
const announceTimeout = 2 * time.Second

// Announce tells the members that returned to this node's ring (after
// SetRing, so no write of their keys is accepted here any more) that they
// were merged: each drops its own cached entries in turn (MergedFrom), since
// it missed the writes this node accepted for its keys. A node paused past
// its failure detection, whose own ring never changed, learns it this way.
// Best effort: an announcement that fails is logged.
func (e *Engine) Announce(returning []ring.Member) {
	for _, m := range returning {
		e.bg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
			defer cancel()
			resp, err := e.cfg.Peers.Merged(ctx, m, &pb.MergedRequest{From: e.cfg.Self, Hlc: e.cfg.Versions.Now()})
			if err != nil {
				e.log.Warn("could not tell a returning member to drop its cached entries", "member", m.Name, "err", err)
				return
			}
			_ = e.ObserveClock(resp.Hlc)
		})
	}
}

// MergedFrom is Merge on the returning side: from, a member of this node's
// ring, took this node back into its ring. Nothing is announced back.
func (e *Engine) MergedFrom(from string) error {
	r := e.ring.Load()
	if r == nil || !r.Has(from) {
		return fmt.Errorf("%w: %s is not in this node's ring", ErrNotReady, from)
	}
	if r.Version() == e.rejoinedAt.Load() {
		return nil // dropped already, when this node installed the table (Rejoined)
	}
	for _, m := range r.Members() {
		if m.Name == from {
			e.Merge([]ring.Member{m})
		}
	}
	return nil
}

// addHandoffs makes every partition ask ms for pending writes for
// HandoffWindow, besides the candidates it has.
func (e *Engine) addHandoffs(ms []ring.Member) {
	r := e.ring.Load()
	if e.cfg.Journal == nil || r == nil {
		return
	}
	now := e.cfg.Now()
	parts := r.PartitionCount()
	cur := e.handoff.Load()
	next := &handoffs{prev: make([][]ring.Member, parts), until: make([]time.Time, parts)}
	for p := range parts {
		var cands []ring.Member
		if cur != nil && p < len(cur.prev) && now.Before(cur.until[p]) {
			cands = append(cands, cur.prev[p]...)
		}
		for _, m := range ms {
			cands = addCandidate(cands, m)
		}
		next.prev[p], next.until[p] = cands, now.Add(e.cfg.HandoffWindow)
	}
	e.handoff.Store(next)
}
