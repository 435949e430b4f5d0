// Package strategy holds the read and write policies of a namespace and the
// guards that keep them safe: one load per key at a time (stampede
// protection), cached not-found results (penetration guard), TTL jitter (herd
// guard), background refresh of hot keys before they expire (a threshold, or
// XFetch) and input limits. Flush empties a namespace or a key prefix in
// constant time; no entry cached before it is served after it returns.
//
// A Namespace runs on a key's owner. It does not route: the node decides
// which node owns a key and calls the owner's Namespace.
package strategy

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/singleflight"
	sfctx "resenje.org/singleflight"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/pkg/ring"
)

// ReadMode says what a miss does.
type ReadMode int

// Read modes.
const (
	// ReadAside: a miss returns not-found; the application loads and Sets.
	ReadAside ReadMode = iota
	// ReadThrough: a miss is loaded from the backend by the owner.
	ReadThrough
)

// WriteMode says where a Set or Delete goes.
type WriteMode int

// Write modes.
const (
	// WriteAside: the cache only; the application writes its database.
	WriteAside WriteMode = iota
	// WriteThrough: the database first, then the cache; a database error
	// fails the call and leaves no entry for the key.
	WriteThrough
	// WriteBehind: the node's durable journal (fsync'd before the ack), then
	// the cache; a flusher writes the database later.
	WriteBehind
)

// Policy configures a Namespace. Durations are wall-clock lengths on the
// owner's clock.
type Policy struct {
	Name  string
	Read  ReadMode
	Write WriteMode
	// TTL is the lifetime of an entry; ≤ 0 means no expiry.
	TTL time.Duration
	// TTLJitter shortens each entry's TTL by a random fraction in
	// [0, TTLJitter) so entries written together do not expire together.
	TTLJitter float64
	// NegativeTTL is how long a not-found load result is cached; 0 disables
	// negative caching.
	NegativeTTL time.Duration
	// LoadTimeout bounds one backend load. The load is shared by every
	// waiting caller, so it does not end when one caller gives up.
	LoadTimeout   time.Duration
	MaxKeyBytes   int
	MaxValueBytes int
	// LeaseTTL bounds a Lease; default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// RefreshAhead, in (0, 1), reloads an entry in the background when it is
	// read after RefreshAhead × its TTL, so hot keys never expire into a
	// miss; cold keys just expire. 0 turns it off. Read-through only.
	RefreshAhead float64
	// XFetchBeta > 0 turns on probabilistic early refresh (XFetch; see
	// xfetch.go) instead of RefreshAhead: a read of an entry with life L
	// left, whose last load took Δ, reloads it in the background with
	// probability e^(−L/(Δ·XFetchBeta)). 1 is the paper's choice
	// (DefaultXFetchBeta); larger refreshes earlier. Read-through only;
	// not with RefreshAhead.
	XFetchBeta float64
	// MaxLoads bounds the loads in flight at once (distinct keys being
	// loaded); a miss that would start one more fails at once with an
	// error wrapping ErrBackpressure (RESOURCE_EXHAUSTED), so a flood of
	// cold keys costs bounded goroutines and memory. Default
	// DefaultMaxLoads.
	MaxLoads int
	// LoadConcurrency bounds the Loader calls running at once; further
	// loads wait for a slot (within their timeout). Give each namespace of
	// a shared database less than the database's connections, so one
	// namespace's slow loads cannot take every connection from the
	// others. 0: unbounded.
	LoadConcurrency int
	// MaxRefreshes bounds the refreshes in flight at once; a hot entry
	// read while that many run is not refreshed then (counted in
	// Stats.RefreshesSkipped). Default DefaultMaxRefreshes.
	MaxRefreshes int
}

// Deps are a Namespace's collaborators. Store is required; the others
// depend on the policy.
type Deps struct {
	Store Store
	// Loader reads misses (read: through).
	Loader Loader
	// Writer writes the database (write: through).
	Writer Writer
	// Journal queues writes durably (write: behind). Its Pending is asked on
	// every miss before the Loader, so a load never shadows a queued write.
	Journal Journal
	// Versions stamps writes; nil means a private hybrid logical clock.
	Versions Versions
	// Tracer starts the spans of backend loads, write-through writes and
	// journal appends; nil means no tracing. Spans carry the namespace,
	// never a key or a value.
	Tracer trace.Tracer
	// OnChange is told of every change to a cached value; nil means none.
	OnChange ChangeHook
	// Clock times loads (XFetch's Δ); nil means the wall clock.
	Clock Clock
	// Previous asks the previous owner of a moved key on a miss, before
	// the Loader (warm hand-over, adopt.go); nil means never.
	Previous Previous
}

// DefaultMaxRefreshes bounds the background refresh-ahead reloads of one
// namespace in flight at once; DefaultMaxLoads its loads.
const (
	DefaultMaxRefreshes = 64
	DefaultMaxLoads     = 256
)

// Stats are a Namespace's counters since start.
type Stats struct {
	Gets, Hits, Misses  uint64
	Loads, LoadsDeduped uint64
	LoadErrors          uint64
	NegativeHits        uint64
	Sets, Deletes       uint64
	WriteErrors         uint64 // write-through or journal failures returned to callers
	StaleRetries        uint64 // write-through writes retried past a newer stored version
	Backpressure        uint64 // writes refused because the journal was full
	Refreshes           uint64 // background refresh-ahead loads started
	XFetchRefreshes     uint64 // of Refreshes, those XFetch started
	Flushes             uint64 // Flush calls: of the namespace or of a prefix
	RefreshesSkipped    uint64 // refreshes not started: MaxRefreshes were in flight
	PendingHits         uint64 // misses answered from the write-behind journal
	LeasesGranted       uint64 // cache-aside misses answered with a lease
	LeaseWaits          uint64 // misses told to wait for another caller's lease
	LeaseRejected       uint64 // leased Sets refused because the lease was spent
	LoadsWaiting        int64  // callers waiting on a load right now
	LoadsRunning        int64  // loads in flight right now (against MaxLoads)
	LoadsRefused        uint64 // misses refused because MaxLoads loads were in flight
	Warms               uint64 // Warm calls that loaded or joined a load (not Gets, not misses)
	Adopted             uint64 // entries taken in bulk from a previous owner (Adopt)
	PreviousHits        uint64 // misses answered by a previous owner's entry
}

type counters struct {
	gets, hits, misses, loads, deduped, loadErrors, negHits, sets, deletes atomic.Uint64
	writeErrors, backpressure, refreshes, refreshSkips, pendingHits        atomic.Uint64
	loadsRefused, xfetches, flushes, warms                                 atomic.Uint64
	staleRetries, adopted, previousHits                                    atomic.Uint64
	leasesGranted, leaseWaits, leaseRejected                               atomic.Uint64
	waiting                                                                atomic.Int64
}

// generations is the number of write-generation stripes; see Namespace.gen.
const generations = 256

// Namespace serves one keyspace on its owner. It is safe for concurrent use.
// Close ends its background work.
type Namespace struct {
	p        Policy
	prefix   string // store key prefix: name + 0x00
	store    Store
	loader   Loader
	writer   Writer
	journal  Journal
	versions Versions
	tracer   trace.Tracer
	flight   sfctx.Group[string, loadResult] // loads; cancelled when no caller waits
	inflight atomic.Int64                    // loads running, against MaxLoads
	dbSlots  chan struct{}                   // LoadConcurrency; nil: unbounded
	epoch    atomic.Uint64                   // bumped by ForgetLoads; part of the flight key
	refresh  singleflight.Group              // one background refresh per key
	refreshN chan struct{}                   // semaphore of Policy.MaxRefreshes
	leases   *leases                         // cache-aside leases by store key
	c        counters
	life     lifetime // loads and refreshes end at Close
	// gen counts writes per key stripe. A load records its stripe's
	// generation before reading the backend and caches its result only if
	// no Set or Delete touched the stripe meanwhile, so a slow load never
	// overwrites a newer write with an older database value.
	gen [generations]atomic.Uint64
	// genMu[i] makes a load's check of gen[i] and its caching one step
	// with respect to a write's bump of gen[i]; without it a Delete could
	// land between the check and the SetIfAbsent and be undone.
	genMu [generations]sync.Mutex
	cond  condLocks // SetIf and GetDel (ttl.go)

	onChange ChangeHook // see Deps.OnChange
	// keyChecks are the backends' own key limits (KeyValidator).
	keyChecks []KeyValidator

	clock   Clock
	cost    loadCostAvg                // Δ of entries that were never loaded
	flushMu sync.Mutex                 // serializes Flush
	flushes atomic.Pointer[flushState] // see flush.go

	previous Previous   // see Deps.Previous
	adopt    adoptState // see adopt.go
}

// New returns a Namespace with the collaborators its policy needs.
func New(p Policy, d Deps) (*Namespace, error) {
	switch {
	case p.Read == ReadThrough && d.Loader == nil:
		return nil, fmt.Errorf("namespace %q: %w: read-through needs a loader", p.Name, ErrNoBackend)
	case p.Write == WriteThrough && d.Writer == nil:
		return nil, fmt.Errorf("namespace %q: %w: write-through needs a writer", p.Name, ErrNoBackend)
	case p.Write == WriteBehind && d.Journal == nil:
		return nil, fmt.Errorf("namespace %q: write-behind needs a journal", p.Name)
	case p.RefreshAhead < 0 || p.RefreshAhead >= 1:
		return nil, fmt.Errorf("namespace %q: refresh-ahead %g must be in [0, 1)", p.Name, p.RefreshAhead)
	case p.XFetchBeta < 0 || math.IsNaN(p.XFetchBeta) || math.IsInf(p.XFetchBeta, 0):
		return nil, fmt.Errorf("namespace %q: xfetch beta %g must be a positive number", p.Name, p.XFetchBeta)
	case (p.XFetchBeta > 0 || p.RefreshAhead > 0) && p.Read != ReadThrough:
		return nil, fmt.Errorf("namespace %q: refresh-ahead and xfetch need read-through (only loaded entries can be reloaded)", p.Name)
	case p.XFetchBeta > 0 && p.RefreshAhead > 0:
		return nil, fmt.Errorf("namespace %q: refresh-ahead and xfetch exclude each other; choose one", p.Name)
	}
	if p.LoadTimeout <= 0 {
		p.LoadTimeout = 10 * time.Second
	}
	if d.Versions == nil {
		d.Versions = &hlc.Clock{}
	}
	if p.LeaseTTL <= 0 {
		p.LeaseTTL = DefaultLeaseTTL
	}
	if p.MaxRefreshes <= 0 {
		p.MaxRefreshes = DefaultMaxRefreshes
	}
	if p.MaxLoads <= 0 {
		p.MaxLoads = DefaultMaxLoads
	}
	if d.Tracer == nil {
		d.Tracer = noop.NewTracerProvider().Tracer("")
	}
	n := &Namespace{
		p: p, prefix: p.Name + "\x00", store: d.Store, loader: d.Loader, versions: d.Versions, tracer: d.Tracer,
		leases: newLeases(p.LeaseTTL), onChange: d.OnChange, refreshN: make(chan struct{}, p.MaxRefreshes),
		previous: d.Previous,
	}
	n.life.init()
	n.flushes.Store(&flushState{})
	n.clock = d.Clock
	if n.clock == nil {
		n.clock = monoClock{base: time.Now()}
	}
	if p.LoadConcurrency > 0 {
		n.dbSlots = make(chan struct{}, p.LoadConcurrency)
	}
	for _, b := range []any{d.Loader, d.Writer} { // one backend may be both: asked twice, cheaply
		if kv, ok := b.(KeyValidator); ok {
			n.keyChecks = append(n.keyChecks, kv)
		}
	}
	if p.Write == WriteThrough {
		n.writer = d.Writer
	}
	if p.Write == WriteBehind {
		n.journal = d.Journal
	}
	return n, nil
}

// Close ends the namespace's background work: loads in flight are
// cancelled and no refresh starts; it returns once none runs. Calls after
// Close that would load fail with ErrClosed.
func (n *Namespace) Close() {
	n.life.close()
	n.leases.StopAllGoroutines()
}

// StoreKey is the key under which namespace ns caches key: the namespace, a
// zero byte, and the key. Nodes hash the same string to route, so a store
// key also tells which partition its entry belongs to.
func StoreKey(ns, key string) string { return ring.Key(ns, key) }

// Policy returns the namespace's policy.
func (n *Namespace) Policy() Policy { return n.p }

// ValidateKey checks a key against the namespace's limits.
func (n *Namespace) ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrInvalidArgument)
	case n.p.MaxKeyBytes > 0 && len(key) > n.p.MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes, namespace %q allows at most %d", ErrInvalidArgument, len(key), n.p.Name, n.p.MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidArgument)
	}
	for _, kv := range n.keyChecks {
		if err := kv.ValidateKey(key); err != nil {
			return fmt.Errorf("%w: namespace %q: %w", ErrInvalidArgument, n.p.Name, err)
		}
	}
	return nil
}

// ValidateValue checks a value against the namespace's limits.
func (n *Namespace) ValidateValue(value []byte) error {
	if n.p.MaxValueBytes > 0 && len(value) > n.p.MaxValueBytes {
		return fmt.Errorf("%w: value is %d bytes, namespace %q allows at most %d", ErrInvalidArgument, len(value), n.p.Name, n.p.MaxValueBytes)
	}
	return nil
}

// Get returns the key's value. On a miss in a read-through namespace it loads
// from the backend, sharing one load among all concurrent callers of the key;
// a caller whose ctx ends stops waiting without cancelling the shared load.
// The returned slice must not be modified.
func (n *Namespace) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, found, answered, err := n.Peek(key)
	if answered || err != nil {
		return v, found, err
	}
	return n.load(ctx, key, n.prefix+key)
}

// Peek is Get without waiting: it answers from memory when it can (a hit, or
// a miss in a namespace that never loads), and reports answered=false when
// only a load could answer, which Get then runs. Counted as a Get either way.
func (n *Namespace) Peek(key string) (value []byte, found, answered bool, err error) {
	if err := n.ValidateKey(key); err != nil {
		return nil, false, true, err
	}
	n.c.gets.Add(1)
	skey := n.prefix + key
	if e, life, ok := n.lookupWithLife(skey); ok {
		if !e.Found {
			n.c.negHits.Add(1)
		} else if due, early := n.refreshDue(e, life); due {
			n.refreshAsync(key, skey, early)
		}
		n.c.hits.Add(1)
		return e.Value, e.Found, true, nil
	}
	n.c.misses.Add(1)
	if n.p.Read != ReadThrough && n.journal == nil && !n.awaitsPrevious(key) {
		return nil, false, true, nil
	}
	return nil, false, false, nil
}

// Load is the rest of a Get after a Peek that could not answer: it reads
// the key's pending write or loads it from the backend, once for all
// concurrent callers, and caches the result. Peek has counted the Get.
func (n *Namespace) Load(ctx context.Context, key string) ([]byte, bool, error) {
	return n.load(ctx, key, n.prefix+key)
}

// WritesWait reports whether a Set or Delete waits on I/O (the database or
// the journal); in a cache-aside namespace it only updates memory.
func (n *Namespace) WritesWait() bool { return n.p.Write != WriteAside }

func (n *Namespace) stripe(skey string) uint64 {
	return xxhash.Sum64String(skey) % generations
}

// bump records a write to skey's stripe before the write reaches the store,
// so that a load in flight does not cache an older value over it.
//
// It also detaches the key's in-flight load, if any: callers that arrive
// after the write start a fresh load instead of joining one that may have
// read the database before the write.
func (n *Namespace) bump(skey string) {
	i := n.stripe(skey)
	n.genMu[i].Lock()
	n.gen[i].Add(1)
	if a := n.adopt.cur.Load(); a != nil {
		a.touch(i, skey)
	}
	n.flight.Forget(n.flightKey(skey))
	n.leases.Invalidate(skey)
	n.genMu[i].Unlock()
}

// ttl returns the lifetime for a new entry: the caller's override if
// positive, kept exact; else the namespace TTL shortened by up to TTLJitter.
func (n *Namespace) ttl(override time.Duration) time.Duration {
	if override > 0 {
		return override
	}
	t := n.p.TTL
	if t > 0 && n.p.TTLJitter > 0 {
		t -= time.Duration(float64(t) * n.p.TTLJitter * rand.Float64())
	}
	return t
}

// Stats returns a snapshot of the counters.
func (n *Namespace) Stats() Stats {
	return Stats{
		Gets: n.c.gets.Load(), Hits: n.c.hits.Load(), Misses: n.c.misses.Load(),
		Loads: n.c.loads.Load(), LoadsDeduped: n.c.deduped.Load(), LoadErrors: n.c.loadErrors.Load(),
		NegativeHits: n.c.negHits.Load(), Sets: n.c.sets.Load(), Deletes: n.c.deletes.Load(),
		WriteErrors: n.c.writeErrors.Load(), StaleRetries: n.c.staleRetries.Load(), Backpressure: n.c.backpressure.Load(),
		Refreshes: n.c.refreshes.Load(), XFetchRefreshes: n.c.xfetches.Load(), Flushes: n.c.flushes.Load(),
		RefreshesSkipped: n.c.refreshSkips.Load(), PendingHits: n.c.pendingHits.Load(),
		LeasesGranted: n.c.leasesGranted.Load(), LeaseWaits: n.c.leaseWaits.Load(), LeaseRejected: n.c.leaseRejected.Load(),
		LoadsWaiting: n.c.waiting.Load(), LoadsRunning: n.inflight.Load(), LoadsRefused: n.c.loadsRefused.Load(),
		Warms:   n.c.warms.Load(),
		Adopted: n.c.adopted.Load(), PreviousHits: n.c.previousHits.Load(),
	}
}
