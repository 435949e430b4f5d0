// Package engine is the one place a request is executed. Every front door
// of a node — unary Cache RPCs, the Cache.Pipeline stream, Peer.Forward,
// and any door to come — turns its calls into Ops and hands them to
// Engine.Execute, which checks each op, routes it by the ring to its owner
// and serves it here, forwards it, or answers it from the hot cache.
// Cross-cutting behaviour (validation, authorization, rate limits,
// routing, the hot cache, counting) is written once, there.
//
// Guarantees:
//   - Any node serves any key: a node that does not own a key forwards it
//     to the owner; a forwarded op is always served by its receiver, even
//     if its ring disagrees, so ops never bounce and cannot deadlock.
//   - Only the owner loads a key, once at a time (strategy.Namespace).
//   - When the owner cannot be reached an op fails with UNAVAILABLE
//     (OWNER_UNREACHABLE); the node never loads in the owner's place,
//     which would turn one node's outage into a stampede on the database.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/hotcache"
	"github.com/ringcache/ringcache/internal/hotkeys"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/seal"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// DefaultForwardTimeout bounds an op that waits when its caller set none.
const DefaultForwardTimeout = 10 * time.Second

// NamespaceSpec is one namespace the engine serves.
type NamespaceSpec struct {
	Policy strategy.Policy
	// Loader reads misses of a read-through namespace; nil otherwise.
	Loader strategy.Loader
	// Writer writes the database of a write-through or write-behind
	// namespace; nil otherwise.
	Writer strategy.Writer
	// Audit writes every access to the namespace to the audit log.
	Audit bool
	// Sensitive seals the namespace's values in the write-behind journal
	// (Config.Sealer).
	Sensitive bool
	// Replicas is how many nodes hold each write-behind write before it is
	// acknowledged, the owner included (write_behind.replicas): 0 means 2,
	// or 1 while the ring has one member. MinReplicas is how many must
	// (write_behind.min_replicas): 0 means all the ring can hold. See
	// replicate.go.
	Replicas, MinReplicas int
}

// Peers is the engine's transport to other nodes (internal/peer.Pool).
type Peers interface {
	Forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error)
	Lookup(ctx context.Context, to ring.Member, req *pb.LookupRequest) (*pb.LookupResponse, error)
	Merged(ctx context.Context, to ring.Member, req *pb.MergedRequest) (*pb.MergedResponse, error)
	// The replication plane of write-behind (replicate.go).
	Replicate(ctx context.Context, to ring.Member) (pb.Peer_ReplicateClient, error)
	Handover(ctx context.Context, to ring.Member, req *pb.HandoverRequest) (*pb.HandoverResponse, error)
	StillPending(ctx context.Context, to ring.Member, req *pb.StillPendingRequest) (*pb.StillPendingResponse, error)
	// The warm hand-over of cached entries (warm.go).
	Transfer(ctx context.Context, to ring.Member, req *pb.TransferRequest) (pb.Peer_TransferClient, error)
	TransferLookup(ctx context.Context, to ring.Member, req *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error)
}

// Config configures an Engine. Self, Namespaces, Store, Versions and Peers
// are required.
type Config struct {
	// Self is this node's name, as the ring names its members.
	Self       string
	Namespaces []NamespaceSpec
	Store      *store.Store
	// Journal queues write-behind writes; required when a namespace is
	// write-behind.
	Journal *journal.Journal
	// Versions is the node's hybrid logical clock.
	Versions *hlc.Clock
	Peers    Peers
	// Hot is the hot cache of keys other nodes own; nil means none.
	Hot *hotcache.Cache
	// HotKeys counts the Gets this node serves as owner of read-through
	// keys, for the hot-key list it re-warms after a restart; nil counts
	// none.
	HotKeys *hotkeys.Tracker
	// Ring is the shape of the ring, for the handoff's ring without this
	// node.
	Ring ring.Config
	// ForwardTimeout bounds an op that waits when its caller set no
	// timeout, and caps the timeouts callers set.
	ForwardTimeout time.Duration
	// HandoffWindow is how long, after taking a partition over, the
	// engine asks its previous owner for pending write-behind writes.
	HandoffWindow time.Duration
	// Warm tunes the warm hand-over of cached entries when partitions
	// change owner (warm.go, warm_out.go).
	Warm WarmConfig
	// Replication tunes replicated write-behind (replicate.go); zero
	// fields take their defaults.
	Replication ReplicationConfig
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// OnChange is told of every change to a cached value.
	OnChange strategy.ChangeHook
	// Merged is told after Merge dropped the cache for members that
	// returned; the node flushes its write-behind journal then (Superseded).
	Merged func()
	// Sealer seals the journal's values of sensitive namespaces.
	Sealer *seal.Sealer
	// Auth authorizes and rate-limits each op of a caller; nil allows all.
	Auth *auth.Authorizer
	// Audit records denied ops and every op on namespaces marked Audit;
	// nil records nothing.
	Audit  *audit.Log
	Tracer trace.Tracer
	Logger *slog.Logger
}

// Engine is safe for concurrent use.
type Engine struct {
	cfg        Config
	log        *slog.Logger
	namespaces map[string]*strategy.Namespace
	names      []string
	audited    map[string]bool
	ring       atomic.Pointer[ring.Ring]
	ready      atomic.Bool // joined (or bootstrapped alone)
	draining   atomic.Bool
	// peersGone: no peer forwards here any more (StopForwardStreams)
	peersGone atomic.Bool
	frozen    atomic.Bool // tests pin a ring to make nodes disagree
	// rejoinedAt is the version of the table this node last installed
	// after it had been left out (Rejoined); 0 for none.
	rejoinedAt atomic.Uint64
	stall      stallWatch // stall.go
	handoff    atomic.Pointer[handoffs]
	notes      notifier
	stats      counters
	bg         sync.WaitGroup // announcements of merges; Close waits
	repl       *replication   // nil without a journal
	replicas   atomic.Pointer[replicaTable]
	warm       warmState
	sweep      sweeper
}

type counters struct {
	forwards, forwardErrors, forwardedIn atomic.Uint64
}

// New builds the namespaces and returns an Engine that is not ready until
// SetReady and SetRing.
func New(cfg Config) (*Engine, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.HandoffWindow <= 0 {
		cfg.HandoffWindow = DefaultHandoffWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Warm.defaults(cfg.HandoffWindow)
	e := &Engine{cfg: cfg, log: cfg.Logger, namespaces: map[string]*strategy.Namespace{}, audited: map[string]bool{}}
	e.warm.out = newOutbox(cfg.Warm, &e.warm.c)
	e.warm.ctx, e.warm.cancel = context.WithCancel(context.Background())
	e.sweep.ctx, e.sweep.cancel = context.WithCancel(context.Background())
	e.sweep.pending = map[string]bool{}
	for _, spec := range cfg.Namespaces {
		name := spec.Policy.Name
		if _, dup := e.namespaces[name]; dup {
			e.Close()
			return nil, fmt.Errorf("namespace %q defined twice", name)
		}
		deps := strategy.Deps{Store: cfg.Store, Loader: spec.Loader, Writer: spec.Writer, Versions: cfg.Versions, Tracer: cfg.Tracer, OnChange: e.onChange(name)}
		if !cfg.Warm.Off {
			deps.Previous = previousOwner{e}
		}
		if spec.Policy.Write == strategy.WriteBehind {
			if cfg.Journal == nil || spec.Writer == nil {
				e.Close()
				return nil, fmt.Errorf("namespace %q is write-behind and needs a journal and a writer", name)
			}
			deps.Journal = handoffJournal{Journal: cfg.Journal.AsQueue(), e: e}
			if spec.Sensitive {
				if cfg.Sealer == nil {
					e.Close()
					return nil, fmt.Errorf("namespace %q is sensitive and write-behind and needs a key to seal its journal (--seal-key-file)", name)
				}
				deps.Journal = sealedJournal{Journal: deps.Journal, s: cfg.Sealer}
			}
		}
		ns, err := strategy.New(spec.Policy, deps)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.namespaces[name] = ns
		e.names = append(e.names, name)
		e.audited[name] = spec.Audit
	}
	if cfg.Journal != nil {
		var err error
		if e.repl, err = newReplication(e); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Close ends the namespaces' background work (loads and refreshes) and the
// replication's, and waits for announcements in flight (bounded by their
// timeout).
func (e *Engine) Close() {
	e.warm.cancel()   // pullers stop
	e.sweep.mu.Lock() // no sweep starts once bg.Wait may have begun
	e.sweep.cancel()
	e.sweep.mu.Unlock()
	if e.repl != nil {
		e.repl.close()
	}
	e.bg.Wait()
	for _, ns := range e.namespaces {
		ns.Close()
	}
}

// Namespace returns the namespace called name.
func (e *Engine) Namespace(name string) (*strategy.Namespace, error) {
	ns, ok := e.namespaces[name]
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("%w: the request names none; configured namespaces: %v", ErrUnknownNamespace, e.names)
		}
		return nil, fmt.Errorf("%w %q; configured namespaces: %v", ErrUnknownNamespace, name, e.names)
	}
	return ns, nil
}

// Names returns the namespaces' names in configuration order.
func (e *Engine) Names() []string { return e.names }

// Self is this node's name, as the ring names its members.
func (e *Engine) Self() string { return e.cfg.Self }

// SetReady marks the node as joined to its cluster (or bootstrapped
// alone): from then on it executes ops that are not forwarded.
func (e *Engine) SetReady() {
	e.ready.Store(true)
	e.notes.notify()
}

// Drain makes the engine refuse new ops from clients (NODE_NOT_READY) and
// wakes every stream waiting on Changed, so it ends.
func (e *Engine) Drain() {
	e.draining.Store(true)
	e.notes.notify()
}

// Ready reports whether the engine executes clients' ops.
func (e *Engine) Ready() bool {
	return e.ready.Load() && !e.draining.Load() && e.ring.Load() != nil && !e.LeftOut()
}

// Draining reports whether Drain was called.
func (e *Engine) Draining() bool { return e.draining.Load() }

// StopForwardStreams ends the peers' forwarding streams into this node
// (Peer.ForwardStream), once they have answered what they read. A leaving
// node calls it when no peer routes to it any more, so that the server can
// stop: until then it serves what peers forward, draining or not.
func (e *Engine) StopForwardStreams() {
	e.peersGone.Store(true)
	e.notes.notify()
}

// ForwardStreamsStopped reports whether StopForwardStreams was called.
func (e *Engine) ForwardStreamsStopped() bool { return e.peersGone.Load() }

// Changed returns a channel that closes at the next ring change, SetReady
// or Drain. Take it before reading the state it guards, so no change is
// missed.
func (e *Engine) Changed() <-chan struct{} { return e.notes.wait() }

// others returns the members of r but this node.
func (e *Engine) others(r *ring.Ring) []ring.Member {
	var out []ring.Member
	for _, m := range r.Members() {
		if m.Name != e.cfg.Self {
			out = append(out, m)
		}
	}
	return out
}

// Ring returns the current ring snapshot; nil before the first.
func (e *Engine) Ring() *ring.Ring { return e.ring.Load() }

// Pin makes the engine route by r and ignore SetRing until Unpin: tests
// use it to make nodes disagree about ownership.
func (e *Engine) Pin(r *ring.Ring) {
	e.frozen.Store(true)
	e.ring.Store(r)
}

// Unpin resumes SetRing.
func (e *Engine) Unpin() { e.frozen.Store(false) }

// Stats are the engine's counters since start, in ops.
type Stats struct {
	Forwards, ForwardErrors, ForwardedIn uint64
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	return Stats{Forwards: e.stats.forwards.Load(), ForwardErrors: e.stats.forwardErrors.Load(), ForwardedIn: e.stats.forwardedIn.Load()}
}

// NamespaceStats returns each namespace's counters, in configuration order.
func (e *Engine) NamespaceStats() []strategy.Stats {
	out := make([]strategy.Stats, len(e.names))
	for i, name := range e.names {
		out[i] = e.namespaces[name].Stats()
	}
	return out
}
