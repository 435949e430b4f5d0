package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Warm hand-over, the previous owner's side. When this node loses a
// partition, its cached entries leave the store (a forwarded op is always
// served by its receiver, so this node must not serve them again) for an
// outbox that only Peer.Transfer and Peer.TransferLookup read. The new
// owner pulls them; the outbox drops a partition once it has been pulled,
// after WarmConfig.Window, or never takes an entry past MaxBytes.

// WarmConfig tunes the warm hand-over; zero fields take their defaults.
type WarmConfig struct {
	// Off turns the hand-over off: a node drops the entries of the
	// partitions it gains or loses, and new owners load from the
	// database.
	Off bool
	// MaxBytes bounds the entries held for new owners (key, value and a
	// fixed overhead each); past it the rest are dropped. Default
	// DefaultWarmMaxBytes.
	MaxBytes int64
	// Rate bounds the bytes per second this node streams to new owners,
	// all of them together. Default DefaultWarmRate.
	Rate int64
	// MessageBytes bounds one Transfer message (a larger entry travels
	// alone). Default DefaultWarmMessageBytes.
	MessageBytes int
	// Window is how long held entries wait to be pulled, and how long a
	// new owner keeps pulling and asking. Default Config.HandoffWindow.
	Window time.Duration
	// Failed reports whether a member failed (crashed, or was cut off)
	// rather than left gracefully: a new owner does not pull from it, so
	// it does not dial a node it cannot reach. nil: none failed.
	Failed func(name string) bool
}

// Defaults of WarmConfig.
const (
	DefaultWarmMaxBytes     = 256 << 20
	DefaultWarmRate         = 64 << 20
	DefaultWarmMessageBytes = 1 << 20
)

// heldOverhead is what a held entry is charged beyond its key and value.
const heldOverhead = 96

type heldEntry struct {
	e       strategy.Entry
	expires time.Time // zero: never
	size    int64
}

type heldPart struct {
	entries map[string]heldEntry // by store key
	bytes   int64
	until   time.Time
}

// outbox holds the entries of partitions this node lost.
type outbox struct {
	mu    sync.Mutex
	parts map[int]*heldPart
	bytes int64
	// owed are the partitions a leaving node still owns and their new
	// owners have not pulled yet; nil unless leaving.
	owed map[int]bool
	// handed are the partitions a leaving node handed over, with the
	// member that pulled them: ops of them go there (warm_leave.go).
	handed map[int]ring.Member
	// handing is len(handed), read without the lock on every op.
	handing atomic.Int64
	// gate counts the writes served here (warm_leave.go).
	gate writeGate
	// count is len(parts), read without the lock on every write.
	count atomic.Int64
	limit *rate.Limiter
	c     *warmCounters
}

type warmCounters struct {
	entriesIn, bytesIn, entriesOut, bytesOut    atomic.Uint64
	missesServed, lookupsServed, dropped, pulls atomic.Uint64
}

func (c *WarmConfig) defaults(window time.Duration) {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultWarmMaxBytes
	}
	if c.Rate <= 0 {
		c.Rate = DefaultWarmRate
	}
	if c.MessageBytes <= 0 {
		c.MessageBytes = DefaultWarmMessageBytes
	}
	if c.Window <= 0 {
		c.Window = window
	}
}

func newOutbox(cfg WarmConfig, c *warmCounters) *outbox {
	return &outbox{parts: map[int]*heldPart{}, c: c,
		limit: rate.NewLimiter(rate.Limit(cfg.Rate), max(int(cfg.Rate), cfg.MessageBytes))}
}

// holdLost moves the store's entries of partitions this node owned in old
// and does not own in r into the outbox, and drops those of partitions it
// gained (as dropUnowned does). Entries a flush hid are dropped.
func (e *Engine) holdLost(old, r *ring.Ring) (held, dropped int) {
	self, now := e.cfg.Self, e.cfg.Now()
	ob := e.warm.out
	until := now.Add(e.cfg.Warm.Window)
	lost := func(p int) bool { return old.PartitionOwner(p).Name == self && r.PartitionOwner(p).Name != self }
	n := e.cfg.Store.TakeFunc(func(skey string) bool {
		p := r.PartitionOf(skey)
		return r.PartitionOwner(p).Name != self || old.PartitionOwner(p).Name != self
	}, func(skey string, en store.Entry, life time.Duration) {
		p := r.PartitionOf(skey)
		if !lost(p) || !e.visibleEntry(skey, en) {
			dropped++
			return
		}
		if ob.hold(p, skey, en, life, now, until, e.cfg.Warm.MaxBytes) {
			held++
		} else {
			dropped++
		}
	})
	_ = n
	return held, dropped
}

func (ob *outbox) hold(p int, skey string, en strategy.Entry, life time.Duration, now, until time.Time, maxBytes int64) bool {
	h := heldEntry{e: en, size: int64(len(skey)+len(en.Value)) + heldOverhead}
	if en.TTL > 0 {
		if life <= 0 {
			return false
		}
		h.expires = now.Add(life)
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	part := ob.parts[p]
	if part == nil {
		part = &heldPart{entries: map[string]heldEntry{}}
		ob.parts[p] = part
		ob.count.Store(int64(len(ob.parts)))
	}
	part.until = until
	old, had := part.entries[skey]
	if had && old.e.Version > en.Version {
		return false
	}
	if ob.bytes-old.size+h.size > maxBytes {
		ob.c.dropped.Add(1)
		return false
	}
	part.entries[skey] = h
	part.bytes += h.size - old.size
	ob.bytes += h.size - old.size
	return true
}

// empty drops every held entry and keeps the partitions, so their pulls
// still complete (with nothing): the entries cannot be trusted after a
// merge. It returns how many entries it dropped.
func (ob *outbox) empty() int {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	n := 0
	for _, part := range ob.parts {
		n += len(part.entries)
		part.entries, part.bytes = map[string]heldEntry{}, 0
	}
	ob.bytes = 0
	return n
}

// prune drops partitions whose window has passed.
func (ob *outbox) prune(now time.Time) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	for p, part := range ob.parts {
		if now.After(part.until) {
			ob.bytes -= part.bytes
			delete(ob.parts, p)
			ob.count.Store(int64(len(ob.parts)))
		}
	}
}

// release drops pulled partitions.
func (ob *outbox) release(parts []uint32) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	for _, p := range parts {
		delete(ob.owed, int(p))
		if part := ob.parts[int(p)]; part != nil {
			ob.bytes -= part.bytes
			delete(ob.parts, int(p))
			ob.count.Store(int64(len(ob.parts)))
		}
	}
}

// snapshot copies a partition's entries (nil when none is held).
func (ob *outbox) snapshot(p int) map[string]heldEntry {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	part := ob.parts[p]
	if part == nil {
		return nil
	}
	out := make(map[string]heldEntry, len(part.entries))
	for k, v := range part.entries {
		out[k] = v
	}
	return out
}

// size returns the held partitions and bytes.
func (ob *outbox) size() (parts int, bytes int64) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	return len(ob.parts), ob.bytes
}

// visibleEntry reports whether a cached entry survives its namespace's
// flushes on this node.
func (e *Engine) visibleEntry(skey string, en strategy.Entry) bool {
	ns, ok := e.namespaces[namespaceOf(skey)]
	return ok && ns.Visible(skey, en)
}

func namespaceOf(skey string) string {
	for i := range len(skey) {
		if skey[i] == 0 {
			return skey[:i]
		}
	}
	return ""
}

// transferEntry is en as it travels, or false when it has expired or a
// flush here hid it since it was held.
func (e *Engine) transferEntry(skey string, h heldEntry, now time.Time) (*pb.TransferEntry, bool) {
	if !e.visibleEntry(skey, h.e) {
		return nil, false
	}
	te := &pb.TransferEntry{Value: h.e.Value, Found: h.e.Found, Version: h.e.Version, Cost: uint32(h.e.Cost)}
	if !h.expires.IsZero() {
		life := h.expires.Sub(now)
		if life <= 0 {
			return nil, false
		}
		te.LifeNanos = int64(life)
	}
	ns := namespaceOf(skey)
	te.Namespace, te.Key = ns, skey[len(ns)+1:]
	return te, true
}

// ServeTransfer streams the held entries of the requested partitions to
// their new owner (Peer.Transfer), in messages of at most MessageBytes, at
// most Rate bytes per second, and then names the partitions this node
// still owns by its table. Partitions sent in full are released.
func (e *Engine) ServeTransfer(ctx context.Context, req *pb.TransferRequest, send func(*pb.TransferResponse) error) error {
	if err := e.ObserveClock(req.Hlc); err != nil {
		return err
	}
	e.checkStall()
	ob, now := e.warm.out, e.cfg.Now()
	ob.prune(now)
	// Writes served here that began before this call may still update the
	// store of a partition whose entries are held already: wait for them
	// (bounded), so the entries sent are not older than what this node
	// acknowledged; those that begin later see the table that sends the
	// partition elsewhere, or that it was handed over.
	ob.gate.drain()
	r := e.ring.Load()
	msg := &pb.TransferResponse{}
	msgBytes := 0
	flush := func() error {
		if len(msg.Entries) == 0 {
			return nil
		}
		if err := ob.limit.WaitN(ctx, min(msgBytes, ob.limit.Burst())); err != nil {
			return err
		}
		msg.Hlc = e.Versions()
		if err := send(msg); err != nil {
			return err
		}
		e.warm.c.entriesOut.Add(uint64(len(msg.Entries)))
		e.warm.c.bytesOut.Add(uint64(msgBytes))
		msg, msgBytes = &pb.TransferResponse{}, 0
		return nil
	}
	var notYet, sent []uint32
	if r != nil && e.leaving() {
		mine := map[int]bool{}
		for _, p := range req.Partitions {
			if int(p) < r.PartitionCount() && r.PartitionOwner(int(p)).Name == e.cfg.Self && ob.snapshot(int(p)) == nil {
				mine[int(p)] = true
			}
		}
		if len(mine) > 0 {
			e.handOver(mine, req.From)
			ob.gate.drain() // writes that began before the hand-over: their entries go too
			e.holdOwned(mine)
		}
	}
	leaving := e.leaving()
	for _, p := range req.Partitions {
		held := ob.snapshot(int(p))
		inRange := r != nil && int(p) < r.PartitionCount()
		owned := inRange && r.PartitionOwner(int(p)).Name == e.cfg.Self
		if held == nil || owned && !leaving { // owned and not leaving: held by a table not yet routed by
			if owned {
				notYet = append(notYet, p)
			} else {
				sent = append(sent, p) // nothing held: pulled, and owed no more
			}
			continue
		}
		if !owned && inRange && r.PartitionOwner(int(p)).Name != req.From {
			// Held for another owner: the caller pulls by another table
			// than this node's (one it routes by late, or one it has left
			// and whose pull has not ended yet). It gets nothing, and the
			// entries wait for their owner.
			continue
		}
		for skey, h := range held {
			te, ok := e.transferEntry(skey, h, now)
			if !ok {
				continue
			}
			n := int(h.size)
			if msgBytes > 0 && msgBytes+n > e.cfg.Warm.MessageBytes {
				if err := flush(); err != nil {
					return err
				}
			}
			msg.Entries = append(msg.Entries, te)
			msgBytes += n
		}
		sent = append(sent, p)
	}
	if err := flush(); err != nil {
		return err
	}
	if err := send(&pb.TransferResponse{Hlc: e.Versions(), NotYet: notYet}); err != nil {
		return err
	}
	ob.release(sent)
	e.warm.c.pulls.Add(1)
	return nil
}

// get returns the held entry of skey in partition p.
func (ob *outbox) get(p int, skey string) (heldEntry, bool) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if part := ob.parts[p]; part != nil {
		h, ok := part.entries[skey]
		return h, ok
	}
	return heldEntry{}, false
}

// holds reports whether partition p is held.
func (ob *outbox) holds(p int) bool {
	if ob.count.Load() == 0 {
		return false
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	return ob.parts[p] != nil
}

// forget drops the held entry of skey: this node served a write of the
// key (a forwarded op of a member that routes by an older table), so the
// held entry is stale.
func (ob *outbox) forget(p int, skey string) {
	if ob.count.Load() == 0 {
		return
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if part := ob.parts[p]; part != nil {
		if h, ok := part.entries[skey]; ok {
			delete(part.entries, skey)
			part.bytes -= h.size
			ob.bytes -= h.size
		}
	}
}
