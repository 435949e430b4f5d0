package service

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ringcache/ringcache/internal/reason"
)

// Invalidation fan-out. Every change of a key on this node (the
// namespaces' ChangeHook) is appended to one shared log, bounded in bytes;
// each WatchInvalidations subscriber reads the log from its own cursor. So
// a Set costs the same however many subscribers there are and however slow
// they read, and the memory held for them is the log's bound, not a
// buffer per subscriber. A subscriber whose cursor falls out of the log
// (it is more than MaxBacklogBytes behind) is dropped: its stream ends
// with RESOURCE_EXHAUSTED, so its client clears its cache instead of
// silently missing a key.

// Defaults of the Hub's bounds.
const (
	// DefaultMaxWatchers bounds the WatchInvalidations subscribers of a
	// node that are not its peers.
	DefaultMaxWatchers = 1024
	// DefaultWatchBacklogBytes bounds the log of changes not yet sent to
	// every subscriber: about 200,000 changes of short keys, half a
	// minute of 6,400 Sets a second.
	DefaultWatchBacklogBytes = 16 << 20
)

// entryOverhead is what an entry costs beyond its encoding: the slot and
// the slice's allocation.
const entryOverhead = 48

// watchRetry is the RetryInfo delay of a subscription refused because
// the node has its most subscribers.
const watchRetry = time.Second

// readScan bounds the log entries one read looks at.
const readScan = 4096

// Hub fans out changed keys to subscribers. The zero value is ready, with
// the default bounds; set the fields before the first Publish.
type Hub struct {
	// MaxSubscribers bounds the subscribers that are not peers; 0 means
	// DefaultMaxWatchers, negative no bound. Peers (nodes' hot caches), at
	// most one per member, are always admitted.
	MaxSubscribers int
	// MaxBacklogBytes bounds the log; 0 means DefaultWatchBacklogBytes.
	MaxBacklogBytes int64
	// IsPeer tells whether a subscriber connected from addr is a peer,
	// when no authenticated peer role says so; nil: none is.
	IsPeer func(addr net.Addr) bool

	subs     atomic.Int64 // all subscribers, peers included
	nonPeers atomic.Int64
	refused  atomic.Uint64
	dropped  atomic.Uint64

	mu    sync.RWMutex // readers read the log, Publish appends
	log   []logEntry   // log[off:] are the retained changes
	off   int
	first uint64 // sequence number of log[off]
	bytes int64
	// members are the subscribers, for Reset.
	members map[*subscriber]struct{}
	// changed is closed at the next append; nil when nobody waits. Set
	// by readers under the read lock (so no append comes between their
	// look at the log and their wait), swapped out by Publish.
	changed atomic.Pointer[chan struct{}]
}

// logEntry is one change: its namespace, and the change already encoded
// as an element of WatchInvalidationsResponse.keys, so that each
// subscriber's message is a concatenation of entries, marshalled once
// however many subscribers send it.
type logEntry struct {
	ns  string
	enc []byte
}

func (e logEntry) cost() int64 { return int64(len(e.enc) + entryOverhead) }

// encodeChange returns the WatchInvalidationsResponse.keys element of a
// change.
func encodeChange(ns, key string) []byte {
	ref := protowire.SizeTag(1) + protowire.SizeBytes(len(ns)) + protowire.SizeTag(2) + protowire.SizeBytes(len(key))
	b := make([]byte, 0, protowire.SizeTag(1)+protowire.SizeBytes(ref))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // WatchInvalidationsResponse.keys
	b = protowire.AppendVarint(b, uint64(ref))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // KeyRef.namespace
	b = protowire.AppendString(b, ns)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // KeyRef.key
	return protowire.AppendString(b, key)
}

// HubStats are the Hub's gauges and counters.
type HubStats struct {
	// Subscribers open now, peers included; BacklogBytes held by the log.
	Subscribers  int64
	BacklogBytes int64
	// Refused subscriptions (the node had its most subscribers) and
	// Dropped subscribers (they fell behind by more than the log holds),
	// since start.
	Refused, Dropped uint64
}

// Stats returns the Hub's figures.
func (h *Hub) Stats() HubStats {
	h.mu.RLock()
	b := h.bytes
	h.mu.RUnlock()
	return HubStats{Subscribers: h.subs.Load(), BacklogBytes: b, Refused: h.refused.Load(), Dropped: h.dropped.Load()}
}

// subscriber is one WatchInvalidations stream's place in the log.
type subscriber struct {
	namespaces map[string]bool // nil: all
	peer       bool
	next       uint64      // sequence number of the next change to send
	reset      atomic.Bool // set by Reset: the stream ends with errReset
}

// errWatchersFull is the error of a subscription over the bound.
func errWatchersFull(limit int) error {
	return reason.Status(codes.ResourceExhausted, reason.Backpressure,
		"node busy: invalidation subscribers at their bound ("+strconv.Itoa(limit)+"); retry shortly or watch another node", watchRetry).Err()
}

// errFellBehind ends the stream of a subscriber that fell behind.
var errFellBehind = reason.Status(codes.ResourceExhausted, reason.Backpressure,
	"invalidation subscriber fell behind: reset your cache and subscribe again", 0).Err()

// subscribe adds a subscriber that sees the changes published from now
// on, or refuses it over the bound.
func (h *Hub) subscribe(namespaces []string, peer bool) (*subscriber, error) {
	if !peer {
		limit := h.MaxSubscribers
		if limit == 0 {
			limit = DefaultMaxWatchers
		}
		if n := h.nonPeers.Add(1); limit > 0 && n > int64(limit) {
			h.nonPeers.Add(-1)
			h.refused.Add(1)
			return nil, errWatchersFull(limit)
		}
	}
	s := &subscriber{peer: peer}
	if len(namespaces) > 0 {
		s.namespaces = map[string]bool{}
		for _, ns := range namespaces {
			s.namespaces[ns] = true
		}
	}
	h.mu.Lock()
	h.subs.Add(1) // under the lock: Publish logs every change from here on
	s.next = h.first + uint64(len(h.log)-h.off)
	if h.members == nil {
		h.members = map[*subscriber]struct{}{}
	}
	h.members[s] = struct{}{}
	h.mu.Unlock()
	return s, nil
}

func (h *Hub) unsubscribe(s *subscriber) {
	if !s.peer {
		h.nonPeers.Add(-1)
	}
	h.mu.Lock()
	delete(h.members, s)
	if h.subs.Add(-1) == 0 {
		h.reset() // nobody left to read it
	}
	h.mu.Unlock()
}

// Publish is the namespaces' ChangeHook. It appends to the log in
// constant time and never waits for a subscriber; with none it does
// nothing.
func (h *Hub) Publish(ns, key string) {
	if h.subs.Load() == 0 {
		return
	}
	e := logEntry{ns: ns, enc: encodeChange(ns, key)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs.Load() == 0 {
		return
	}
	h.log = append(h.log, e)
	h.bytes += e.cost()
	limit := h.MaxBacklogBytes
	if limit <= 0 {
		limit = DefaultWatchBacklogBytes
	}
	for h.bytes > limit && h.off < len(h.log) {
		h.bytes -= h.log[h.off].cost()
		h.log[h.off] = logEntry{}
		h.off++
		h.first++
	}
	if h.off > len(h.log)/2 && h.off >= 1024 { // reclaim the front
		n := copy(h.log, h.log[h.off:])
		clear(h.log[n:])
		h.log, h.off = h.log[:n], 0
	}
	h.wake()
}

// wake wakes the readers waiting for a change.
func (h *Hub) wake() {
	if c := h.changed.Swap(nil); c != nil {
		close(*c)
	}
}

// reset empties the log; h.mu is held.
func (h *Hub) reset() {
	h.first += uint64(len(h.log) - h.off)
	h.log, h.off, h.bytes = nil, 0, 0
}

// invalidations is a WatchInvalidationsResponse, marshalled: Codec sends
// it as it is.
type invalidations []byte

// read returns a message of up to max changes after s's cursor in its
// namespaces, and moves the cursor past them. With nothing to send it
// returns a channel closed at the next change. more says whether changes
// are left; errFellBehind that s's cursor has left the log. Only s's own
// goroutine calls it.
func (h *Hub) read(s *subscriber, max int) (msg invalidations, wait <-chan struct{}, more bool, _ error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if s.reset.Load() {
		return nil, nil, false, errReset
	}
	if s.next < h.first {
		h.dropped.Add(1)
		return nil, nil, false, errFellBehind
	}
	end := h.first + uint64(len(h.log)-h.off)
	// Scan a bounded stretch, so a subscriber to a quiet namespace never
	// holds the lock long; size the message before copying.
	from, n, size := s.next, 0, 0
	for scanned := 0; s.next < end && n < max && scanned < readScan; scanned++ {
		e := h.log[h.off+int(s.next-h.first)]
		s.next++
		if s.namespaces == nil || s.namespaces[e.ns] {
			n++
			size += len(e.enc)
		}
	}
	if n > 0 {
		msg = make(invalidations, 0, size)
		for seq := from; seq < s.next; seq++ {
			e := h.log[h.off+int(seq-h.first)]
			if s.namespaces == nil || s.namespaces[e.ns] {
				msg = append(msg, e.enc...)
			}
		}
	}
	if s.next < end {
		return msg, nil, true, nil
	}
	if n > 0 {
		return msg, nil, false, nil
	}
	c := h.changed.Load()
	if c == nil {
		nc := make(chan struct{})
		if !h.changed.CompareAndSwap(nil, &nc) {
			c = h.changed.Load() // another reader installed one
		} else {
			c = &nc
		}
	}
	return nil, *c, false, nil
}
