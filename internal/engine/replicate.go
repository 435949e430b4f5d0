package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/replica"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Replicated write-behind. A write-behind Set or Delete is acknowledged
// once it is fsync'd in this node's journal and in the journals of its
// replicas (replicas.go): the record goes to the replicas' links first,
// then into the local journal, so the replicas' fsyncs run while ours does,
// and the write waits for both. How many copies a write needs is the
// namespace's choice:
//
//   - Replicas (write_behind.replicas) counts the copies wanted, the owner
//     included; 0 means 2, capped at the ring's size, so a cluster of one
//     keeps the old guarantee. An explicit count above the ring's size is
//     capped too, and every write acknowledged with fewer copies than asked
//     is counted as under-replicated.
//   - MinReplicas (write_behind.min_replicas) is the least number of copies
//     with which a write is acknowledged; 0 means all the copies the ring
//     can hold, so by default a write whose replica is unreachable fails
//     with UNAVAILABLE (REPLICA_UNAVAILABLE, naming the replica) and never
//     silently has fewer copies. Below Replicas, such a write is
//     acknowledged with the copies it got and counted under-replicated, and
//     the node re-replicates its pending records once the replica is back.

// Defaults of ReplicationConfig.
const (
	DefaultReplicationTimeout = replica.DefaultTimeout
	DefaultSweepInterval      = 30 * time.Second
	DefaultSweepAge           = time.Minute
	// maxReplicas bounds write_behind.replicas.
	maxReplicas = 5
	// replicationPage is how many records one resync, takeover or handover
	// step reads and sends at once.
	replicationPage = 500
)

// ReplicationConfig tunes replicated write-behind.
type ReplicationConfig struct {
	// Timeout bounds one replication frame's round trip (and a connection
	// attempt); a replica that does not answer within it counts as
	// unreachable. Default DefaultReplicationTimeout.
	Timeout time.Duration
	// SweepInterval is how often the node asks the origins of the copies
	// it holds which are still pending, and SweepAge how old a copy must
	// be to be asked about. Defaults DefaultSweepInterval, DefaultSweepAge.
	SweepInterval, SweepAge time.Duration
	// Latency, when set, is told every replication frame's round trip.
	Latency func(time.Duration)
}

// ErrReplicaUnavailable: a write-behind write reached fewer replicas than
// its namespace's min_replicas.
var ErrReplicaUnavailable = errors.New("replica unavailable")

// policy is a namespace's replication.
type policy struct{ replicas, min int }

// copies returns, for a ring of members members, the copies wanted (want),
// the copies a write is sent to (target, want capped at the ring's size)
// and the copies it needs (need).
func (p policy) copies(members int) (want, target, need int) {
	want = p.replicas
	if want == 0 {
		want = min(2, members)
	}
	target = min(want, members)
	need = p.min
	if need == 0 {
		need = target
	}
	return want, target, need
}

// replication is the engine's replicated write-behind state.
type replication struct {
	e        *Engine
	j        *journal.Journal
	self     journal.Origin
	links    *replica.Links
	recv     *replica.Receiver
	policies map[string]policy
	depth    int                        // replicas computed per partition
	writers  map[string]strategy.Writer // by namespace: salvage (sweep.go)
	presence *presence
	// readySince is when the manager first saw the node ready (its
	// goroutine's alone).
	readySince time.Time

	stopStreams chan struct{} // closed by StopReplicaStreams
	streamsOnce sync.Once
	ids         sync.Map // node name → its journal ID as last seen

	// The manager (resync.go).
	kick     chan struct{}
	stop     chan struct{}
	stopped  chan struct{}
	mu       sync.Mutex
	changed  []bool // partitions to re-replicate; nil: none
	all      bool   // re-replicate every pending record
	gen      uint64 // bumped by every mark
	inSync   atomic.Bool
	departed atomic.Bool // some origin's copies are orphaned (takeover.go)
	takeMu   sync.Mutex  // one takeover pass at a time

	underReplicated, takenOver, takeovers, handedOver atomic.Uint64
}

func newReplication(e *Engine) (*replication, error) {
	cfg := e.cfg
	rc := &cfg.Replication
	if rc.Timeout <= 0 {
		rc.Timeout = DefaultReplicationTimeout
	}
	if rc.SweepInterval <= 0 {
		rc.SweepInterval = DefaultSweepInterval
	}
	if rc.SweepAge <= 0 {
		rc.SweepAge = DefaultSweepAge
	}
	e.cfg.Replication = *rc
	id, err := cfg.Journal.ID()
	if err != nil {
		return nil, fmt.Errorf("write-behind journal ID: %w", err)
	}
	s := &replication{e: e, j: cfg.Journal, self: journal.Origin{Node: cfg.Self, ID: id}, policies: map[string]policy{}, depth: 2,
		writers: map[string]strategy.Writer{}, presence: newPresence(),
		stopStreams: make(chan struct{}), kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	for _, spec := range cfg.Namespaces {
		if spec.Policy.Write != strategy.WriteBehind {
			continue
		}
		p := policy{replicas: spec.Replicas, min: spec.MinReplicas}
		switch {
		case p.replicas < 0 || p.replicas > maxReplicas:
			return nil, fmt.Errorf("namespace %q: write_behind.replicas %d must be between 1 and %d", spec.Policy.Name, p.replicas, maxReplicas)
		case p.min < 0 || p.min > max(p.replicas, 2):
			return nil, fmt.Errorf("namespace %q: write_behind.min_replicas %d must be between 1 and replicas (%d)", spec.Policy.Name, p.min, max(p.replicas, 2))
		}
		s.policies[spec.Policy.Name] = p
		s.writers[spec.Policy.Name] = spec.Writer
		s.depth = max(s.depth, p.replicas)
	}
	s.links = replica.New(replica.Config{
		Origin: s.self, Dial: cfg.Peers, Clock: cfg.Versions, Timeout: rc.Timeout, Observe: rc.Latency,
		ReplicaID: func(name, id string) { s.sawJournal(name, id) }, Logger: e.log,
	})
	s.recv = &replica.Receiver{Journal: cfg.Journal, Clock: cfg.Versions, Self: cfg.Self, Stop: s.stopStreams, Logger: e.log,
		Hello: func(o journal.Origin) {
			s.presence.sawHello(o.Node, time.Now())
			s.sawJournal(o.Node, o.ID)
		}, Applied: s.applied}
	s.inSync.Store(true)
	go s.manage()
	return s, nil
}

func (s *replication) close() {
	close(s.stop)
	<-s.stopped
	s.links.Close()
	s.StopStreams()
}

// StopStreams ends the replica streams this node serves.
func (s *replication) StopStreams() { s.streamsOnce.Do(func() { close(s.stopStreams) }) }

// replicatedAppend is strategy.Journal.Append with replication.
func (h handoffJournal) replicatedAppend(ctx context.Context, ns string, w strategy.Write) error {
	e, s := h.e, h.e.repl
	r := e.ring.Load()
	if s == nil || r == nil {
		return h.Journal.Append(ctx, ns, w)
	}
	want, target, need := s.policies[ns].copies(len(r.Members()))
	if need > target {
		return fmt.Errorf("%w: namespace %q needs %d copies of every write (write_behind.min_replicas) and the ring has %d member(s); nothing was stored",
			ErrReplicaUnavailable, ns, need, len(r.Members()))
	}
	p := r.PartitionOf(ring.Key(ns, w.Key))
	var live []ring.Member
	var down []string
	for _, m := range e.targets(r, p, target-1) {
		if err := s.links.Down(m.Name); err != nil {
			down = append(down, err.Error())
			continue
		}
		live = append(live, m)
	}
	if 1+len(live) < need {
		return fmt.Errorf("%w: namespace %q needs %d copies (write_behind.min_replicas) and only %d can be made; nothing was stored: %s",
			ErrReplicaUnavailable, ns, need, 1+len(live), strings.Join(down, "; "))
	}
	rec := journal.Record{Namespace: ns, Key: w.Key, Value: w.Value, Delete: w.Delete, Version: w.Version}
	if w.Delete {
		rec.Value = nil
	}
	results := make([]*replica.Result, len(live))
	for i, m := range live { // first: their fsyncs run while ours does
		results[i] = s.links.Store(m, []journal.Record{rec})[0]
	}
	if err := h.Journal.Append(ctx, ns, w); err != nil {
		if !errors.Is(err, strategy.ErrSuperseded) && len(live) > 0 {
			s.mark(nil, true) // a replica may now hold this copy in place of an older pending one
		}
		return err
	}
	copies := 1
	var failed []string
	var full error
	for _, res := range results {
		err := res.Wait(ctx)
		if err == nil {
			copies++
			continue
		}
		failed = append(failed, err.Error())
		if errors.Is(err, journal.ErrFull) && full == nil {
			full = err
		}
	}
	failed = append(failed, down...)
	if copies < need {
		s.mark(nil, true)
		if full != nil {
			return fmt.Errorf("%w: the write is in this node's journal but reached %d of the %d copies it needs: %w",
				strategy.ErrBackpressure, copies, need, full)
		}
		return fmt.Errorf("%w: namespace %q: the write is in this node's journal but reached %d of the %d copies it needs (write_behind.min_replicas), so it may still be applied: %s",
			ErrReplicaUnavailable, ns, copies, need, strings.Join(failed, "; "))
	}
	if copies < want {
		s.underReplicated.Add(1)
		if len(failed) > 0 {
			s.mark(nil, true)
		}
	}
	return nil
}

// departedPending returns the newest copy of (ns, key) held for an origin
// that departed (takeover.go), if any: a partition's new owner reads the
// pending writes of its dead previous owner before the database.
func (s *replication) departedPending(ns, key string) (strategy.Write, bool, error) {
	if !s.departed.Load() {
		return strategy.Write{}, false, nil
	}
	r := s.e.ring.Load()
	if r == nil {
		return strategy.Write{}, false, nil
	}
	rec, _, ok, err := s.j.ReplicaPending(ns, key, func(o journal.Origin) bool { return s.isDeparted(r, o) })
	if err != nil || !ok {
		return strategy.Write{}, false, err
	}
	return rec.Write(), true, nil
}

// FlushedWriter wraps the database writer of write-behind namespace ns:
// what it writes is reported to the records' replicas, which drop their
// copies (batched in the replication frames). A batch the database applied
// but for some stale writes (*strategy.StaleVersionError) reports the
// others; the stale ones are settled by the flusher, superseded
// (Superseded drops their copies) or written again with a newer version
// (this writer drops them then).
func (e *Engine) FlushedWriter(ns string, w strategy.Writer) strategy.Writer {
	if e.repl == nil {
		return w
	}
	return strategy.WriterFunc(func(ctx context.Context, ws []strategy.Write) error {
		err := w.Write(ctx, ws)
		var stale *strategy.StaleVersionError
		switch {
		case err == nil:
			e.repl.flushed(ns, ws)
		case errors.As(err, &stale):
			e.repl.flushed(ns, applied(ws, stale))
		}
		return err
	})
}

// applied returns the writes of ws the database applied: all but stale's.
func applied(ws []strategy.Write, stale *strategy.StaleVersionError) []strategy.Write {
	skip := make(map[int]bool, len(stale.Writes))
	for _, s := range stale.Writes {
		skip[s.Index] = true
	}
	out := make([]strategy.Write, 0, len(ws))
	for i, w := range ws {
		if !skip[i] {
			out = append(out, w)
		}
	}
	return out
}

// flushed tells the current replicas of ws that ws reached the database.
func (s *replication) flushed(ns string, ws []strategy.Write) {
	r := s.e.ring.Load()
	if r == nil {
		return
	}
	_, target, _ := s.policies[ns].copies(len(r.Members()))
	by := map[string][]journal.Record{}
	to := map[string]ring.Member{}
	for _, w := range ws {
		for _, m := range s.e.targets(r, r.PartitionOf(ring.Key(ns, w.Key)), target-1) {
			by[m.Name] = append(by[m.Name], journal.Record{Namespace: ns, Key: w.Key, Version: w.Version})
			to[m.Name] = m
		}
	}
	for name, recs := range by {
		s.links.Drop(to[name], recs)
	}
}

// sawJournal records the journal ID a node runs with; a new one for a node
// whose copies this node holds means it lost its disk: take them over.
func (s *replication) sawJournal(node, id string) {
	if id == "" {
		return
	}
	if old, loaded := s.ids.Swap(node, id); !loaded || old != id {
		s.poke()
	}
}

// applied is told of every frame stored: copies of an origin this node
// considers gone are taken over at once.
func (s *replication) applied(o journal.Origin) {
	if r := s.e.ring.Load(); r != nil && s.isDeparted(r, o) {
		s.departed.Store(true)
		s.poke()
	}
}

// ReplicationStats are the replication's counters and state.
type ReplicationStats struct {
	JournalID string
	// InSync is false while pending records are being re-replicated.
	InSync                                            bool
	UnderReplicated, TakenOver, Takeovers, HandedOver uint64
	Links                                             replica.Stats
}

// ReplicationStats returns them; the zero value without a journal.
func (e *Engine) ReplicationStats() ReplicationStats {
	s := e.repl
	if s == nil {
		return ReplicationStats{}
	}
	return ReplicationStats{JournalID: s.self.ID, InSync: s.inSync.Load(), UnderReplicated: s.underReplicated.Load(),
		TakenOver: s.takenOver.Load(), Takeovers: s.takeovers.Load(), HandedOver: s.handedOver.Load(), Links: s.links.Stats()}
}

// Departed reports whether the copies of o this node holds are orphaned.
func (e *Engine) Departed(o journal.Origin) bool {
	r := e.ring.Load()
	return e.repl != nil && r != nil && e.repl.isDeparted(r, o)
}

// ServeReplicas serves one Peer.Replicate stream (the replica's side).
func (e *Engine) ServeReplicas(s replica.Stream) error {
	if e.repl == nil {
		return fmt.Errorf("%w: this node has no write-behind journal to keep replica copies in", strategy.ErrNoBackend)
	}
	return e.repl.recv.Serve(s)
}

// settleTimeout bounds SettleReplication.
const settleTimeout = time.Second

// SettleReplication waits, up to a second, until every replica has
// answered what was queued to it (drops of flushed records included).
func (e *Engine) SettleReplication(ctx context.Context) error {
	if e.repl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	return e.repl.links.Idle(ctx)
}

// StopReplicaStreams ends the replica streams this node serves: called once
// the node has left its cluster, before its server stops.
func (e *Engine) StopReplicaStreams() {
	if e.repl != nil {
		e.repl.StopStreams()
	}
}
