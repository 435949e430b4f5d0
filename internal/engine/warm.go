package engine

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Warm hand-over, the new owner's side. When this node gains partitions,
// every namespace starts remembering the keys written here
// (strategy.Namespace.BeginAdopt) before the new table routes anything
// here; then one puller per previous owner streams that owner's held
// entries (Peer.Transfer) and adopts them, and until a partition's pull
// has finished a miss on it asks the previous owner first
// (Peer.TransferLookup, inside the key's single flight). A key written
// here since the change is never overwritten by an entry of the previous
// owner. See warm_out.go for the previous owner's side.

// transfer is one gained partition's pull.
type transfer struct {
	from  ring.Member
	until time.Time
	done  atomic.Bool
	// fenceOnly: the hand-over is off; the pull only waits for the
	// previous owner to let the partition go (fence.go).
	fenceOnly bool
}

// inbound maps gained partitions to their pulls; immutable once published.
type inbound map[int]*transfer

// warmState is the engine's hand-over state.
type warmState struct {
	in  atomic.Pointer[inbound]
	out *outbox
	c   warmCounters
	// foreign are keys changed here on partitions this node did not own
	// (fence.go): a previous owner's entry of one is not adopted.
	foreign foreignWrites
	// ctx ends at Close: pullers stop.
	ctx    context.Context
	cancel context.CancelFunc
	// pullers counts the pullers running.
	pullers atomic.Int32
}

// pullRetry is how long a puller waits after a failed pull (doubled
// for each failure).
const pullRetry = 100 * time.Millisecond

// notYetRetry is how long a puller waits before asking a previous owner
// again for partitions it has not let go of yet: until it does, both
// serve them, and this node settles them only then (fence.go).
const notYetRetry = 20 * time.Millisecond

// maxPullFailures is how many failed pulls end a puller.
const maxPullFailures = 3

// gained returns, per previous owner, the partitions this node owns in r
// and another member owned in src.
func (e *Engine) gained(src, r *ring.Ring) map[string][]int {
	if src == nil || src.PartitionCount() != r.PartitionCount() {
		return nil
	}
	out := map[string][]int{}
	failed := map[string]bool{}
	if f := e.cfg.Warm.Failed; f != nil {
		for _, m := range src.Members() {
			failed[m.Name] = !r.Has(m.Name) && f(m.Name)
		}
	}
	for p := range r.PartitionCount() {
		if r.PartitionOwner(p).Name != e.cfg.Self {
			continue
		}
		if o := src.PartitionOwner(p); o.Name != e.cfg.Self && !failed[o.Name] {
			out[o.Name] = append(out[o.Name], p)
		}
	}
	return out
}

// beginWarm prepares the pulls of the partitions gained from src to r;
// the caller publishes r, then runs the returned start. It returns nil
// when there is nothing to pull.
//
// With the hand-over off, the pulls still run, to fence the partitions
// (fence.go): nothing is adopted, and misses do not ask.
func (e *Engine) beginWarm(src, r *ring.Ring) func() {
	next := inbound{}
	if cur := e.warm.in.Load(); cur != nil {
		// Earlier pulls still running for partitions kept; those of
		// partitions r takes away end (stillPulled).
		for p, t := range *cur {
			if !t.done.Load() && r.PartitionOwner(p).Name == e.cfg.Self {
				next[p] = t
			}
		}
	}
	byOwner := e.gained(src, r)
	if len(byOwner) == 0 {
		e.warm.in.Store(&next)
		return nil
	}
	adopt := !e.cfg.Warm.Off
	if adopt {
		for _, ns := range e.namespaces {
			ns.BeginAdopt()
		}
	}
	until := e.cfg.Now().Add(e.cfg.Warm.Window)
	pulls := map[string]map[int]*transfer{}
	for name, parts := range byOwner {
		from := src.PartitionOwner(parts[0])
		pulls[name] = map[int]*transfer{}
		for _, p := range parts {
			t := &transfer{from: from, until: until, fenceOnly: !adopt}
			next[p] = t
			pulls[name][p] = t
		}
	}
	e.warm.in.Store(&next)
	return func() {
		left := atomic.Int32{}
		left.Store(int32(len(pulls)))
		for _, ts := range pulls {
			e.bg.Add(1)
			e.warm.pullers.Add(1)
			go func() {
				defer e.bg.Done()
				defer e.warm.pullers.Add(-1)
				e.pull(ts, until)
				if left.Add(-1) == 0 && adopt {
					for _, ns := range e.namespaces {
						ns.EndAdopt()
					}
				}
			}()
		}
	}
}

// Settling reports whether partitions this node gained are still being
// pulled from their previous owners and settled (the hand-off fence): until
// then, what it cached of them may still be dropped.
func (e *Engine) Settling() bool {
	cur := e.warm.in.Load()
	if cur == nil {
		return false
	}
	for _, t := range *cur {
		if !t.done.Load() {
			return true
		}
	}
	return false
}

// pull streams the held entries of one previous owner's partitions until
// each is pulled, taken away by a later table, the window ends or the
// engine closes.
func (e *Engine) pull(ts map[int]*transfer, until time.Time) {
	var from ring.Member
	parts := make([]uint32, 0, len(ts))
	for p, t := range ts {
		from = t.from
		parts = append(parts, uint32(p))
	}
	defer func() {
		for _, t := range ts {
			t.done.Store(true)
		}
	}()
	failures := 0
	for len(parts) > 0 && e.cfg.Now().Before(until) {
		if parts = e.stillPulled(ts, parts); len(parts) == 0 {
			break
		}
		notYet, err := e.pullOnce(from, parts)
		wait := notYetRetry
		if err != nil {
			// A previous owner that is no longer a member answers at once
			// if it is leaving gracefully; one that cannot be reached is
			// not asked again and again (its connection would only back
			// off further), and its partitions start cold.
			failures++
			r := e.ring.Load()
			if failures >= maxPullFailures || r == nil || !r.Has(from.Name) {
				e.log.Debug("warm hand-over pull failed; loading from the database instead", "previous_owner", from.Name, "err", err)
				return
			}
			wait = pullRetry << failures
		} else {
			pending := map[uint32]bool{}
			for _, p := range notYet {
				pending[p] = true
			}
			for _, p := range parts {
				if !pending[p] {
					ts[int(p)].done.Store(true)
				}
			}
			parts = notYet
		}
		if len(parts) == 0 {
			break
		}
		select {
		case <-e.warm.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// stillPulled returns the partitions of parts that ts still pulls: a later
// table that takes a partition away from this node ends its pull (the
// inbound map keeps a pull only while this node owns its partition).
// Asking on, this node would be sent the entries that the previous owner,
// once it let go, holds for the partition's owner in its own table.
func (e *Engine) stillPulled(ts map[int]*transfer, parts []uint32) []uint32 {
	in := e.warm.in.Load()
	return slices.DeleteFunc(parts, func(p uint32) bool { return in == nil || (*in)[int(p)] != ts[int(p)] })
}

// pullOnce runs one Transfer call and adopts what it brings, except the
// keys changed here as a foreign key; then it settles the partitions the
// previous owner let go (fence.go).
func (e *Engine) pullOnce(from ring.Member, parts []uint32) ([]uint32, error) {
	ctx, cancel := context.WithCancel(e.warm.ctx)
	defer cancel()
	stream, err := e.cfg.Peers.Transfer(ctx, from, &pb.TransferRequest{From: e.cfg.Self, Hlc: e.Versions(), Partitions: parts})
	if err != nil {
		return nil, err
	}
	var notYet []uint32
	adopted := map[string]bool{}
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			e.settle(letGo(parts, notYet), adopted)
			return notYet, nil
		}
		if err != nil {
			return nil, err
		}
		if err := e.ObserveClock(resp.Hlc); err != nil {
			return nil, err
		}
		for _, te := range resp.Entries {
			e.warm.c.entriesIn.Add(1)
			e.warm.c.bytesIn.Add(uint64(len(te.Namespace) + 1 + len(te.Key) + len(te.Value) + heldOverhead))
			skey := ring.Key(te.Namespace, te.Key)
			if ns, ok := e.namespaces[te.Namespace]; ok && !e.warm.foreign.has(skey, e.cfg.Now()) && ns.Adopt(te.Key, entryOf(te)) {
				adopted[skey] = true
			}
		}
		notYet = append(notYet, resp.NotYet...)
	}
}

// letGo returns the partitions of parts not in notYet.
func letGo(parts, notYet []uint32) map[int]bool {
	out := make(map[int]bool, len(parts))
	for _, p := range parts {
		out[int(p)] = true
	}
	for _, p := range notYet {
		delete(out, int(p))
	}
	return out
}

// entryOf is a transferred entry as the store keeps it: its life left as
// its TTL.
func entryOf(te *pb.TransferEntry) strategy.Entry {
	return strategy.Entry{Value: te.Value, Found: te.Found, Version: te.Version,
		TTL: time.Duration(te.LifeNanos), Cost: strategy.LoadCost(te.Cost)}
}

// previousOwner implements strategy.Previous for the namespaces.
type previousOwner struct{ e *Engine }

func (po previousOwner) transfer(ns, key string) *transfer {
	in, r := po.e.warm.in.Load(), po.e.ring.Load()
	if in == nil || r == nil || len(*in) == 0 {
		return nil
	}
	t := (*in)[r.PartitionOf(ring.Key(ns, key))]
	if t == nil || t.fenceOnly || t.done.Load() || po.e.cfg.Now().After(t.until) {
		return nil
	}
	return t
}

// Open reports whether a miss of key may be answered by a previous owner:
// this node's own outbox holds the key's partition (a member that routes
// by an older table forwarded the miss here), or a pull of it is open.
func (po previousOwner) Open(ns, key string) bool {
	r := po.e.ring.Load()
	if r == nil {
		return false
	}
	if po.e.warm.out.holds(r.PartitionOf(ring.Key(ns, key))) {
		return true
	}
	return po.transfer(ns, key) != nil
}

// Held answers from this node's outbox, else, with remote, from the
// previous owner of an open pull.
func (po previousOwner) Held(ctx context.Context, ns, key string, remote bool) (strategy.Entry, bool, bool) {
	e := po.e
	if r := e.ring.Load(); r != nil {
		skey := ring.Key(ns, key)
		if h, ok := e.warm.out.get(r.PartitionOf(skey), skey); ok {
			if te, live := e.transferEntry(skey, h, e.cfg.Now()); live {
				return entryOf(te), true, true
			}
		}
	}
	t := po.transfer(ns, key)
	if !remote || t == nil {
		return strategy.Entry{}, false, false
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	resp, err := e.cfg.Peers.TransferLookup(ctx, t.from, &pb.TransferLookupRequest{Namespace: ns, Key: key, Hlc: e.Versions()})
	if err != nil {
		e.log.Debug("warm hand-over lookup failed; loading", "previous_owner", t.from.Name, "err", err)
		return strategy.Entry{}, false, false
	}
	if err := e.ObserveClock(resp.Hlc); err != nil || !resp.Held || resp.Entry == nil {
		return strategy.Entry{}, false, false
	}
	e.warm.c.missesServed.Add(1)
	return entryOf(resp.Entry), false, true
}

// TransferLookup returns the held entry of one key for its new owner's
// miss (Peer.TransferLookup).
func (e *Engine) TransferLookup(req *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error) {
	if err := e.ObserveClock(req.Hlc); err != nil {
		return nil, err
	}
	e.checkStall()
	resp := &pb.TransferLookupResponse{}
	if te, ok := e.heldOrOwned(req.Namespace, req.Key); ok {
		resp.Held, resp.Entry = true, te
		e.warm.c.lookupsServed.Add(1)
	}
	resp.Hlc = e.Versions()
	return resp, nil
}

// heldOrOwned returns key's entry for a new owner: the one held in the
// outbox, else, when this node still owns the key's partition by its table
// (it has not seen the change yet, or it is leaving), the one in its
// store, as a forwarded Get would read it.
func (e *Engine) heldOrOwned(ns, key string) (*pb.TransferEntry, bool) {
	r := e.ring.Load()
	if r == nil {
		return nil, false
	}
	skey := ring.Key(ns, key)
	p := r.PartitionOf(skey)
	h, ok := e.warm.out.get(p, skey)
	if !ok && r.PartitionOwner(p).Name == e.cfg.Self {
		if en, life, found := e.cfg.Store.GetWithLife(skey); found {
			h, ok = heldEntry{e: en}, true
			if en.TTL > 0 {
				h.expires = e.cfg.Now().Add(life)
			}
		}
	}
	if !ok {
		return nil, false
	}
	return e.transferEntry(skey, h, e.cfg.Now())
}

// onChange is namespace ns's change hook: Config.OnChange, after the
// held entry of the key, if any, is dropped (this node changed the key).
func (e *Engine) onChange(ns string) strategy.ChangeHook {
	return func(namespace, key string) {
		e.forgetWritten(ns, key)
		e.noteForeign(ns, key)
		if e.cfg.OnChange != nil {
			e.cfg.OnChange(namespace, key)
		}
	}
}

// forgetWritten drops the held entry of a key this node just changed.
func (e *Engine) forgetWritten(ns, key string) {
	if e.warm.out.count.Load() == 0 {
		return
	}
	if r := e.ring.Load(); r != nil {
		skey := ring.Key(ns, key)
		e.warm.out.forget(r.PartitionOf(skey), skey)
	}
}

// WarmStats are the warm hand-over's counters since start.
type WarmStats struct {
	// EntriesIn and BytesIn were received from previous owners (bulk
	// pulls); EntriesOut and BytesOut were sent to new owners.
	EntriesIn, BytesIn, EntriesOut, BytesOut uint64
	// MissesServed are misses here answered by a previous owner's entry;
	// LookupsServed are such misses of new owners answered here.
	MissesServed, LookupsServed uint64
	// Dropped entries did not fit the outbox (WarmConfig.MaxBytes).
	Dropped uint64
	// HeldPartitions and HeldBytes wait in the outbox now.
	HeldPartitions int
	HeldBytes      int64
}

// WarmStats returns the counters.
func (e *Engine) WarmStats() WarmStats {
	c := &e.warm.c
	parts, bytes := e.warm.out.size()
	return WarmStats{EntriesIn: c.entriesIn.Load(), BytesIn: c.bytesIn.Load(), EntriesOut: c.entriesOut.Load(),
		BytesOut: c.bytesOut.Load(), MissesServed: c.missesServed.Load(), LookupsServed: c.lookupsServed.Load(),
		Dropped: c.dropped.Load(), HeldPartitions: parts, HeldBytes: bytes}
}
