package replica

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Defaults of Config.
const (
	DefaultTimeout         = 2 * time.Second
	DefaultMaxFrameRecords = 1000
	DefaultMaxFrameBytes   = 2 << 20
	// retryDown is how long a link that failed is reported Down before the
	// next record makes it try again.
	retryDown = 500 * time.Millisecond
)

// Dialer opens Peer.Replicate streams (internal/peer.Pool).
type Dialer interface {
	Replicate(ctx context.Context, to ring.Member) (pb.Peer_ReplicateClient, error)
}

// Clock is the node's hybrid logical clock: frames carry it, answers move
// it.
type Clock interface {
	Now() uint64
	Observe(v uint64) error
}

// Config configures Links.
type Config struct {
	// Origin is this node and its journal: the hello of every stream.
	Origin journal.Origin
	Dial   Dialer
	Clock  Clock
	// Timeout bounds a connection attempt and the answer to one frame;
	// default DefaultTimeout.
	Timeout time.Duration
	// MaxFrameRecords and MaxFrameBytes bound one frame (records and
	// drops; their namespace, key and value bytes). A record larger than
	// MaxFrameBytes travels alone.
	MaxFrameRecords int
	MaxFrameBytes   int
	// Observe, when set, is told each frame's round trip (metrics).
	Observe func(time.Duration)
	// ReplicaID, when set, is told each replica's journal ID as its stream
	// opens (a replica that lost its disk comes back with another).
	ReplicaID func(replica, id string)
	Logger    *slog.Logger
}

// Links are the origin's side: one link per replica, each with its own
// goroutine and stream. Safe for concurrent use.
type Links struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	links   map[string]*link  // by member name
	members map[string]string // name → address of the ring's members (Retain); nil: any
	closed  bool
	wg      sync.WaitGroup

	lat   latencies
	stats struct{ stored, failedFrames, frames atomic.Uint64 }
}

// New returns Links; Close ends them.
func New(cfg Config) *Links {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxFrameRecords <= 0 {
		cfg.MaxFrameRecords = DefaultMaxFrameRecords
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Links{cfg: cfg, log: cfg.Logger, links: map[string]*link{}}
}

// Result is the outcome of storing one record on one replica: receive
// once from Done, then read Err.
type Result struct {
	done chan struct{}
	err  error
}

// Done is closed when the result is known.
func (r *Result) Done() <-chan struct{} { return r.done }

// Err is nil once the replica stored the record; valid after Done.
func (r *Result) Err() error { return r.err }

func (r *Result) finish(err error) {
	r.err = err
	close(r.done)
}

// Wait waits for r until ctx ends.
func (r *Result) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// item is one record queued on a link.
type item struct {
	rec  *pb.ReplicaRecord
	drop bool
	res  *Result // nil for drops: nobody waits for them
	size int
}

// Store queues recs on the link to replica to; the results come in order.
// It never blocks on the network.
func (ls *Links) Store(to ring.Member, recs []journal.Record) []*Result {
	res := make([]*Result, len(recs))
	items := make([]item, len(recs))
	for i, r := range recs {
		res[i] = &Result{done: make(chan struct{})}
		items[i] = item{rec: toProto(r, true), res: res[i], size: len(r.Namespace) + len(r.Key) + len(r.Value)}
	}
	ls.enqueue(to, items)
	return res
}

// Drop queues, on the link to replica to, the news that recs reached the
// database (at their versions): the replica drops its copies at or below
// them. Nobody waits for it; a drop lost is made good by the replica's
// sweep (Peer.StillPending).
func (ls *Links) Drop(to ring.Member, recs []journal.Record) {
	items := make([]item, len(recs))
	for i, r := range recs {
		items[i] = item{rec: toProto(r, false), drop: true, size: len(r.Namespace) + len(r.Key)}
	}
	ls.enqueue(to, items)
}

func (ls *Links) enqueue(to ring.Member, items []item) {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		failAll(items, errClosed(to))
		return
	}
	if addr, ok := ls.members[to.Name]; ls.members != nil && (!ok || addr != to.Addr) {
		ls.mu.Unlock() // no link to a node out of the ring: it would dial a dead address
		failAll(items, fmt.Errorf("%w: %s at %s is not in this node's ring", ErrUnavailable, to.Name, to.Addr))
		return
	}
	l := ls.links[to.Name]
	if l != nil && l.to.Addr != to.Addr { // the member came back elsewhere
		l.close()
		l = nil
	}
	if l == nil {
		l = newLink(ls, to)
		ls.links[to.Name] = l
		ls.wg.Go(l.run)
	}
	ls.mu.Unlock()
	l.push(items)
}

// Down returns why the link to the replica named name failed when it did
// so recently (within half a second, or while its last attempt is still
// failing), else nil: a record sent now would fail at once.
func (ls *Links) Down(name string) error {
	ls.mu.Lock()
	l := ls.links[name]
	ls.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.downErr()
}

// Retain closes the links to members not in keep, and refuses links to
// them until a later Retain names them; what they queued fails.
func (ls *Links) Retain(keep []ring.Member) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.members = make(map[string]string, len(keep))
	for _, m := range keep {
		ls.members[m.Name] = m.Addr
	}
	for name, l := range ls.links {
		if !slices.ContainsFunc(keep, func(m ring.Member) bool { return m.Name == name && m.Addr == l.to.Addr }) {
			l.close()
			delete(ls.links, name)
		}
	}
}

// Idle waits until every link has sent and had answered what was queued
// when Idle was called (drops included), or until ctx ends.
func (ls *Links) Idle(ctx context.Context) error {
	ls.mu.Lock()
	var marks []*Result
	for _, l := range ls.links {
		m := &Result{done: make(chan struct{})}
		l.push([]item{{rec: nil, res: m}}) // a marker: answered when reached
		marks = append(marks, m)
	}
	ls.mu.Unlock()
	for _, m := range marks {
		select {
		case <-m.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close ends every link; queued records fail. It waits for the links'
// goroutines.
func (ls *Links) Close() {
	ls.mu.Lock()
	ls.closed = true
	for name, l := range ls.links {
		l.close()
		delete(ls.links, name)
	}
	ls.mu.Unlock()
	ls.wg.Wait()
}

// Stats are the Links' counters since start.
type Stats struct {
	Stored       uint64 // records acknowledged by replicas
	Frames       uint64 // frames answered
	FailedFrames uint64 // frames (or connection attempts with records waiting) that failed
	// P50 and P99 of the frame round trips over the last 4096 frames.
	P50, P99 time.Duration
}

// Stats returns the counters.
func (ls *Links) Stats() Stats {
	p50, p99 := ls.lat.quantiles()
	return Stats{Stored: ls.stats.stored.Load(), Frames: ls.stats.frames.Load(), FailedFrames: ls.stats.failedFrames.Load(), P50: p50, P99: p99}
}

// ToProto returns r as it travels.
func ToProto(r journal.Record) *pb.ReplicaRecord { return toProto(r, true) }

func toProto(r journal.Record, withValue bool) *pb.ReplicaRecord {
	p := &pb.ReplicaRecord{Namespace: r.Namespace, Key: r.Key, Delete: r.Delete, Version: r.Version}
	if withValue && !r.Delete {
		p.Value = r.Value
		if p.Value == nil {
			p.Value = []byte{} // an empty value, not a delete
		}
	}
	return p
}

// FromProto returns the record p carries.
func FromProto(p *pb.ReplicaRecord) journal.Record {
	r := journal.Record{Namespace: p.GetNamespace(), Key: p.GetKey(), Delete: p.GetDelete(), Version: p.GetVersion()}
	if !r.Delete {
		r.Value = p.GetValue()
		if r.Value == nil {
			r.Value = []byte{}
		}
	}
	return r
}

func failAll(items []item, err error) {
	for _, it := range items {
		if it.res != nil {
			it.res.finish(err)
		}
	}
}

// latencies keeps the last frames' round trips for quantiles.
type latencies struct {
	mu   sync.Mutex
	buf  [4096]time.Duration
	n    int
	next int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.buf[l.next] = d
	l.next = (l.next + 1) % len(l.buf)
	l.n = min(l.n+1, len(l.buf))
	l.mu.Unlock()
}

func (l *latencies) quantiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	s := slices.Clone(l.buf[:l.n])
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0
	}
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}
