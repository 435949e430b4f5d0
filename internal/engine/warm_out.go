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
	owed  map[int]bool
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

// holdOwned moves the store's entries of the given partitions, which this
// node still owns by its table, into the outbox: the node is leaving, and
// their new owner asks for them.
func (e *Engine) holdOwned(parts map[int]bool) {
	r := e.ring.Load()
	now := e.cfg.Now()
	until := now.Add(e.cfg.Warm.Window)
	e.cfg.Store.TakeFunc(func(skey string) bool { return parts[r.PartitionOf(skey)] }, func(skey string, en store.Entry, life time.Duration) {
		if e.visibleEntry(skey, en) {
			e.warm.out.hold(r.PartitionOf(skey), skey, en, life, now, until, e.cfg.Warm.MaxBytes)
		}
	})
	e.warm.out.mu.Lock()
	for p := range parts { // an empty partition is pulled too
		if e.warm.out.parts[p] == nil {
			e.warm.out.parts[p] = &heldPart{entries: map[string]heldEntry{}, until: until}
		}
	}
	e.warm.out.mu.Unlock()
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

// prune drops partitions whose window has passed.
func (ob *outbox) prune(now time.Time) {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	for p, part := range ob.parts {
		if now.After(part.until) {
			ob.bytes -= part.bytes
			delete(ob.parts, p)
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

// StartLeaving makes this node hand its partitions over as it leaves
// (graceful leave): from now on a new owner's pull of a partition this
// node still owns takes its entries out of the store, and AwaitTransfers waits
// for the pulls. Call it before announcing the leave.
func (e *Engine) StartLeaving() {
	r := e.ring.Load()
	if r == nil || e.cfg.Warm.Off {
		return
	}
	owed := map[int]bool{}
	for p := range r.PartitionCount() {
		if r.PartitionOwner(p).Name == e.cfg.Self {
			owed[p] = true
		}
	}
	ob := e.warm.out
	ob.mu.Lock()
	ob.owed = owed
	ob.mu.Unlock()
}

func (e *Engine) leaving() bool {
	ob := e.warm.out
	ob.mu.Lock()
	defer ob.mu.Unlock()
	return ob.owed != nil
}

// AwaitTransfers waits, after StartLeaving and the leave, until the members that
// took this node's partitions have pulled them all, or ctx ends. It
// returns how many partitions were not pulled.
func (e *Engine) AwaitTransfers(ctx context.Context) int {
	if !e.leaving() {
		return 0
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		e.warm.out.mu.Lock()
		left := len(e.warm.out.owed)
		e.warm.out.mu.Unlock()
		if left == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return left
		case <-tick.C:
		}
	}
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
	ob, now := e.warm.out, e.cfg.Now()
	ob.prune(now)
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
			e.holdOwned(mine)
		}
	}
	for _, p := range req.Partitions {
		held := ob.snapshot(int(p))
		if held == nil {
			if r != nil && int(p) < r.PartitionCount() && r.PartitionOwner(int(p)).Name == e.cfg.Self {
				notYet = append(notYet, p)
			}
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

// TransferLookup returns the held entry of one key for its new owner's
// miss (Peer.TransferLookup).
func (e *Engine) TransferLookup(req *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error) {
	if err := e.ObserveClock(req.Hlc); err != nil {
		return nil, err
	}
	resp := &pb.TransferLookupResponse{}
	r := e.ring.Load()
	if r != nil {
		skey := ring.Key(req.Namespace, req.Key)
		ob := e.warm.out
		ob.mu.Lock()
		var h heldEntry
		ok := false
		if part := ob.parts[r.PartitionOf(skey)]; part != nil {
			h, ok = part.entries[skey]
		}
		ob.mu.Unlock()
		if !ok && e.leaving() && r.PartitionOwner(r.PartitionOf(skey)).Name == e.cfg.Self {
			// Not pulled yet: the entry is still in the store.
			if en, life, found := e.cfg.Store.GetWithLife(skey); found {
				h, ok = heldEntry{e: en, size: int64(len(skey) + len(en.Value))}, true
				if en.TTL > 0 {
					h.expires = e.cfg.Now().Add(life)
				}
			}
		}
		if ok {
			if te, live := e.transferEntry(skey, h, e.cfg.Now()); live {
				resp.Held, resp.Entry = true, te
				e.warm.c.lookupsServed.Add(1)
			}
		}
	}
	resp.Hlc = e.Versions()
	return resp, nil
}
