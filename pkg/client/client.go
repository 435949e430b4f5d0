// Package client is the Go client of ringcache.
//
// A Client learns the ring from the cluster over a stream (WatchRing) and
// sends each call straight to the key's owner, so a call costs one hop. When
// the owner cannot be reached it tries other nodes (any node serves any key
// by forwarding), with a circuit breaker per node so a dead node is skipped
// at once instead of timing out every call. Calls that may be repeated
// safely are retried with backoff on UNAVAILABLE only.
//
// GetOrLoad makes cache-aside safe: on a miss one caller cluster-wide holds
// a lease and runs the loader, others wait briefly for its value, and a
// Delete during the load makes the loader's Set fail rather than store a
// stale value (leases as in Facebook's memcache, NSDI 2013).
//
// # Pipelining
//
// Get, Set and Delete travel over one Pipeline stream per node rather than
// as an RPC each: a call made while the client is sending an earlier frame
// to that node waits for that send and goes out with every other call queued
// meanwhile, in one frame, and results come back by id in whatever order
// the node has them. There is no timer, so a lone call goes at once; under
// load, frames carry many calls, and the per-call cost of HTTP/2 streams,
// headers and syscalls is paid once per frame (BENCHMARKS.md has the
// figures). Retry and breaker rules are those of unary calls; a call whose
// stream breaks after it was sent counts as possibly applied, and a node
// that drains tells the client which calls it never read, so those are
// retried elsewhere. Nodes that predate Pipeline are called unary, as with
// Options.Unary. GetMany, Lease and GetOrLoad remain unary calls.
//
// # Near cache
//
// Options.NearCache (off by default) keeps Get results in the client's
// memory, bytes-bounded (NearCacheOptions.MaxBytes, 64 MiB) and for at most
// NearCacheOptions.TTL (2 s), and answers a Get from there with no call.
// Every node streams the keys whose value changes on it (WatchInvalidations:
// Set, Delete, leased Set, write-through and write-behind writes, loads and
// refreshes); the client watches every node of its ring and drops the keys
// it is told of. Its own Set and Delete drop the key at once. Entries are
// served only while every ring node's stream is live; when a stream breaks,
// is reset because the client fell behind, or starts, and when the ring
// changes, the near cache drops everything, since changes may have been
// missed. A write by another client is thus seen once its invalidation
// crosses one stream (about 1 ms p50, 6 ms p99 in the in-process tests);
// TTL bounds the staleness should one be lost while its stream stays up,
// for instance while this client's ring lags the cluster's.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/invalwatch"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/internal/sent"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Options configures a Client. Only Seeds is required.
type Options struct {
	// Seeds are node addresses (host:port) to learn the ring from; any one
	// reachable node is enough.
	Seeds []string
	// DialOptions come after the defaults (plaintext, no response size
	// cap) and override them, e.g. grpc.WithTransportCredentials for TLS.
	DialOptions []grpc.DialOption
	// CallTimeout bounds a call whose context has no deadline; default 5 s.
	CallTimeout time.Duration
	// Retries is how many other nodes a call tries after UNAVAILABLE;
	// default 2. RetryBackoff is the first wait between tries (doubled,
	// jittered); default 10 ms.
	Retries      int
	RetryBackoff time.Duration
	// LeaseWait bounds how long GetOrLoad waits for another caller's lease
	// before it runs the loader itself; default 2 s.
	LeaseWait time.Duration
	// FailOpen makes GetOrLoad call the loader directly when the cluster
	// cannot be reached (counted in Stats.FailOpen); otherwise it returns
	// the error.
	FailOpen bool
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// NearCache, when set, keeps Get results in the client, invalidated by
	// the keys' owners (see the package doc); nil (the default) means none.
	NearCache *NearCacheOptions
	// Unary sends every call as an RPC of its own instead of over each
	// node's Pipeline stream (see the package doc); for comparison and for
	// nodes behind proxies that do not pass streams.
	Unary bool
}

// Stats are a Client's counters since New.
type Stats struct {
	Calls         uint64 // calls made
	Retries       uint64 // tries on another node after UNAVAILABLE
	RingUpdates   uint64 // ring snapshots received
	FailOpen      uint64 // GetOrLoad loads run without the cluster
	LeaseRejected uint64 // GetOrLoad Sets refused because the key changed meanwhile
	// Near cache (zero without one): Gets served from it, Gets that made a
	// call, keys invalidated by the nodes, and resets (every entry
	// dropped: a stream broke or started, or the ring changed).
	NearHits, NearMisses, NearInvalidations, NearResets uint64
	// Pipeline frames sent: Calls/PipelineFrames is the number of calls
	// that share a frame on average (Gets, Sets and Deletes only).
	PipelineFrames uint64
}

// Client is safe for concurrent use. Close it when done.
type Client struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	nodes  map[string]*nodeConn // by address
	closed bool                 // no new connections after Close
	linger time.Duration        // nodeLinger

	ring   atomic.Pointer[routes]
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pipes  sync.WaitGroup // Pipeline stream goroutines; added under mu while !closed

	calls, retries, ringUpdates, failOpen, leaseRejected atomic.Uint64
	frames                                               atomic.Uint64

	near *nearCache // nil without Options.NearCache
}

// routes is a ring snapshot as the client uses it.
type routes struct {
	version uint64
	parts   int
	owners  []string // partition → node address
	addrs   []string // every node, in ring order
}

// nodeLinger is how long the client keeps the connection to a node that
// left its ring (and is no seed), in case it comes back.
const nodeLinger = time.Minute

// nodeConn is one node: a connection and its circuit breaker.
type nodeConn struct {
	retire  *time.Timer // closes the connection after nodeLinger; guarded by Client.mu
	addr    string
	cc      *grpc.ClientConn
	cache   pb.CacheClient
	pipe    *pipeline // nil with Options.Unary
	breaker *gobreaker.CircuitBreaker[any]
}

// pipelined reports whether calls to n go over its Pipeline stream.
func (n *nodeConn) pipelined() bool { return n.pipe != nil && n.pipe.supported() }

// one makes one Get, Set or Delete on n: op over its Pipeline stream, or
// rpc, the same call as an RPC of its own, when n does not serve Pipeline
// (or Options.Unary). It returns a Get's value and found flag.
func (n *nodeConn) one(ctx context.Context, op *pb.PipelineOp, rpc func(ctx context.Context) ([]byte, bool, error)) ([]byte, bool, error) {
	if n.pipelined() {
		r, err := n.pipe.do(ctx, op)
		if !errors.Is(err, errPipelineUnsupported) {
			return r.GetValue(), r.GetFound(), err
		}
	}
	var v []byte
	var found bool
	err := unary(ctx, func(ctx context.Context) (err error) {
		v, found, err = rpc(ctx)
		return err
	})
	return v, found, err
}

// New returns a Client and starts learning the ring in the background;
// until the first ring arrives, calls go to the seeds.
func New(opts Options) (*Client, error) { return newClient(opts, nodeLinger) }

// newClient is New with linger in place of nodeLinger (tests shorten it).
func newClient(opts Options, linger time.Duration) (*Client, error) {
	if len(opts.Seeds) == 0 {
		return nil, errors.New("ringcache client: at least one seed address is required")
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 5 * time.Second
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = 2
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = 10 * time.Millisecond
	}
	if opts.LeaseWait <= 0 {
		opts.LeaseWait = 2 * time.Second
	}
	c := &Client{opts: opts, log: opts.Logger, nodes: map[string]*nodeConn{}, linger: linger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for _, s := range opts.Seeds {
		if _, err := c.node(s); err != nil {
			c.closeConns()
			return nil, err
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if opts.NearCache != nil {
		nco := *opts.NearCache
		c.near = newNearCache(c, &nco)
		c.wg.Go(c.near.run)
	}
	c.wg.Go(c.watchRing)
	return c, nil
}

// Close stops the ring stream and closes every connection.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	c.closeConns()
	c.pipes.Wait()
	return nil
}

func (c *Client) closeConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for addr, n := range c.nodes {
		if n.retire != nil {
			n.retire.Stop()
		}
		n.cc.Close()
		delete(c.nodes, addr)
	}
}

// retain keeps the connections to the nodes of the ring (addrs) and to the
// seeds; those to other nodes close after nodeLinger unless they come back
// into the ring meanwhile. So a client of a cluster that replaces its
// nodes over time holds connections, breakers and streams for the nodes it
// uses, not for every node it ever saw.
func (c *Client) retain(addrs []string) {
	keep := make(map[string]bool, len(addrs)+len(c.opts.Seeds))
	for _, a := range addrs {
		keep[a] = true
	}
	for _, a := range c.opts.Seeds {
		keep[a] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, n := range c.nodes {
		switch {
		case keep[addr] && n.retire != nil:
			n.retire.Stop()
			n.retire = nil
		case !keep[addr] && n.retire == nil:
			var t *time.Timer
			t = time.AfterFunc(c.linger, func() { c.drop(addr, n, &t) }) // t is read under c.mu
			n.retire = t
		}
	}
}

// drop closes n, the connection to addr, unless it was kept (or retired
// anew, by a timer other than t) meanwhile.
func (c *Client) drop(addr string, n *nodeConn, t **time.Timer) {
	c.mu.Lock()
	if c.closed || c.nodes[addr] != n || n.retire != *t {
		c.mu.Unlock()
		return
	}
	delete(c.nodes, addr)
	c.mu.Unlock()
	n.cc.Close()
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	s := Stats{Calls: c.calls.Load(), Retries: c.retries.Load(), RingUpdates: c.ringUpdates.Load(),
		FailOpen: c.failOpen.Load(), LeaseRejected: c.leaseRejected.Load(), PipelineFrames: c.frames.Load()}
	if nc := c.near; nc != nil {
		s.NearHits, s.NearMisses = nc.hits.Load(), nc.misses.Load()
		s.NearInvalidations, s.NearResets = nc.invals.Load(), nc.resets.Load()
	}
	return s
}

// RingVersion returns the version of the ring the client routes by; 0
// until it has one.
func (c *Client) RingVersion() uint64 {
	if r := c.ring.Load(); r != nil {
		return r.version
	}
	return 0
}

// Nodes returns the addresses of the nodes in the client's ring; nil until
// it has one.
func (c *Client) Nodes() []string {
	if r := c.ring.Load(); r != nil {
		return append([]string(nil), r.addrs...)
	}
	return nil
}

// node returns the connection to addr, dialling it (lazily) if new.
func (c *Client) node(addr string) (*nodeConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if n, ok := c.nodes[addr]; ok {
		return n, nil
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
		// Fixed windows, as the nodes use: no BDP pings on busy connections.
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(1 << 20),
		grpc.WithStatsHandler(sent.Handler{}), // tells calls that never left from calls in doubt
	}, c.opts.DialOptions...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("ringcache client: %s: %w", addr, err)
	}
	n := &nodeConn{addr: addr, cc: cc, cache: pb.NewCacheClient(cc)}
	n.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:    addr,
		Timeout: 2 * time.Second, // open → half-open: probe the node again
		// Only a node that cannot be reached trips its breaker; a NOT_FOUND,
		// or a node reporting that the key's owner is unreachable, says the
		// node itself works.
		IsSuccessful: func(err error) bool { return !transportFailure(err) },
		ReadyToTrip:  func(cnt gobreaker.Counts) bool { return cnt.ConsecutiveFailures >= 3 },
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.log.Info("ringcache node circuit", "node", name, "from", from.String(), "to", to.String())
		},
	})
	if !c.opts.Unary {
		n.pipe = &pipeline{c: c, node: n}
	}
	c.nodes[addr] = n
	return n, nil
}

var errClosed = errors.New("ringcache client: closed")

// Reason returns the reason a node gave for err (google.rpc.ErrorInfo,
// domain "ringcache.io"; cache.proto lists them), or "" when err carries
// none: it is no node's answer (the connection failed) or no error.
func Reason(err error) string { return reason.Of(err) }

// RetryDelay returns the delay after which a node said a retry may
// succeed (google.rpc.RetryInfo), or 0 when it said none.
func RetryDelay(err error) time.Duration { return reason.RetryDelay(err) }

// unreachable reports whether err says the node could not serve the call
// at all, so another node may: the node could not be reached, is not
// ready, or could not reach the key's owner. A node reporting that the
// database is down is not unreachable: another node would ask the same
// database.
func unreachable(err error) bool {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return true
	}
	switch reason.Of(err) {
	case reason.NodeNotReady, reason.OwnerUnreachable, reason.OwnerConnectionLost:
		return true
	}
	return transportFailure(err)
}

// transportFailure reports whether err is gRPC's own report that the node
// could not be reached or the connection broke, as opposed to an answer of
// the node (which carries a reason, whatever its code). Only transport
// failures trip a node's breaker.
func transportFailure(err error) bool {
	return status.Code(err) == codes.Unavailable && !reason.FromNode(err)
}

// notSent reports whether a failed call surely did not reach any node that
// could have applied it: the breaker refused it, it never reached a
// connection, the node was not ready, or the node could not send it to the
// key's owner. Only then may a write be retried: a retried Set gets a newer
// version and could overwrite another client's later write.
func notSent(err error) bool {
	if errors.Is(err, errNotSent) || errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return true
	}
	switch reason.Of(err) {
	case reason.NodeNotReady, reason.OwnerUnreachable:
		return true
	}
	return false
}

// unary makes one unary RPC with ctx, marking its error as not sent when
// the call never reached a connection.
func unary(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, tr := sent.Track(ctx)
	err := call(ctx)
	if err != nil && !tr.Sent() && status.Code(err) == codes.Unavailable {
		return markNotSent(err)
	}
	return err
}

// candidates returns the nodes to try for key: its owner first, then the
// others in ring order, then the seeds.
func (c *Client) candidates(ns, key string) []string {
	r := c.ring.Load()
	if r == nil {
		return c.opts.Seeds
	}
	owner := r.owners[ring.PartitionFor(ring.Key(ns, key), r.parts)]
	out := make([]string, 0, len(r.addrs)+len(c.opts.Seeds))
	out = append(out, owner)
	for _, a := range r.addrs {
		if a != owner {
			out = append(out, a)
		}
	}
	for _, s := range c.opts.Seeds {
		if s != owner && !contains(r.addrs, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// call runs fn on the key's owner, and on other nodes while the ones tried
// are unreachable (at most Retries more), backing off between tries.
//
// A write (write=true) is tried on another node only when the failed try
// surely did not reach the cluster (notSent); a read on any unreachable.
func (c *Client) call(ctx context.Context, ns, key string, write bool, fn func(ctx context.Context, n *nodeConn) error) error {
	c.calls.Add(1)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	// The owner first; the list of other nodes is built only when needed.
	err := c.try(ctx, c.Owner(ns, key), fn)
	if !c.retryable(err, write) {
		return err
	}
	b := &backoff.ExponentialBackOff{InitialInterval: c.opts.RetryBackoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Second}
	for i, addr := range c.candidates(ns, key) {
		if i == 0 {
			continue // the owner, tried above
		}
		if i > c.opts.Retries {
			break
		}
		c.retries.Add(1)
		if werr := invalwatch.Sleep(ctx, b.NextBackOff()); werr != nil {
			return fmt.Errorf("%w (last try: %w)", werr, err)
		}
		if err = c.try(ctx, addr, fn); !c.retryable(err, write) {
			return err
		}
	}
	return err
}

// try runs fn on the node at addr through its circuit breaker.
func (c *Client) try(ctx context.Context, addr string, fn func(ctx context.Context, n *nodeConn) error) error {
	n, err := c.node(addr)
	if err != nil {
		return err
	}
	_, err = n.breaker.Execute(func() (any, error) { return nil, fn(ctx, n) })
	return err
}

// retryable reports whether a failed try may be repeated on another node.
func (c *Client) retryable(err error, write bool) bool {
	return err != nil && unreachable(err) && (!write || notSent(err))
}

// watchRing keeps a WatchRing stream open to some node and installs every
// snapshot it sends, moving to another node when the stream breaks.
func (c *Client) watchRing() {
	b := &backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 2 * time.Second}
	for attempt := 0; ; attempt++ {
		addrs := c.opts.Seeds
		if r := c.ring.Load(); r != nil {
			addrs = append(append([]string{}, r.addrs...), c.opts.Seeds...)
		}
		addr := addrs[attempt%len(addrs)]
		if err := c.followRing(addr); c.ctx.Err() != nil {
			return
		} else if err != nil {
			c.log.Debug("ring stream ended; trying another node", "node", addr, "err", err)
		}
		if invalwatch.Sleep(c.ctx, b.NextBackOff()) != nil {
			return
		}
	}
}

func (c *Client) followRing(addr string) error {
	n, err := c.node(addr)
	if err != nil {
		return err
	}
	stream, err := n.cache.WatchRing(c.ctx, &pb.WatchRingRequest{})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		r := &routes{version: msg.Version, parts: int(msg.PartitionCount), owners: make([]string, len(msg.Owners))}
		for _, nd := range msg.Nodes {
			r.addrs = append(r.addrs, nd.GrpcAddr)
		}
		if r.parts == 0 || len(msg.Owners) != r.parts {
			return fmt.Errorf("malformed ring from %s: %d partitions, %d owners", addr, r.parts, len(msg.Owners))
		}
		for p, o := range msg.Owners {
			if int(o) >= len(r.addrs) {
				return fmt.Errorf("malformed ring from %s: owner %d of %d nodes", addr, o, len(r.addrs))
			}
			r.owners[p] = r.addrs[o]
		}
		c.ring.Store(r)
		c.ringUpdates.Add(1)
		c.retain(r.addrs)
		if c.near != nil {
			c.near.ringChanged()
		}
	}
}
