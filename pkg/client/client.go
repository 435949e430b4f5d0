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
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// Options configures a Client. Only Seeds is required.
type Options struct {
	// Seeds are node addresses (host:port) to learn the ring from; any one
	// reachable node is enough.
	Seeds []string
	// TLS, when set, dials the nodes over TLS (see TLSOptions); nil dials
	// in plaintext.
	TLS *TLSOptions
	// Token, when set, is sent with every call as a bearer token
	// (authorization: Bearer <token>), identifying the caller to nodes
	// with an auth section.
	Token string
	// DialOptions come after the defaults (plaintext or TLS, no response
	// size cap, a TCP dialer that reads and writes with raw system calls
	// on Linux) and override them: grpc.WithContextDialer replaces the
	// dialer (gRPC's own honours HTTPS_PROXY; the default does not).
	DialOptions []grpc.DialOption
	// CallTimeout bounds a call whose context has no deadline; default 5 s.
	CallTimeout time.Duration
	// Retries is how many other nodes a call tries after UNAVAILABLE;
	// default 2. RetryBackoff is the first wait between tries (doubled,
	// jittered); default 10 ms. A call that fails on every node it tried
	// returns an error that says what each answered; its gRPC status and
	// Reason are the last try's.
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

	dialSec []grpc.DialOption // TLS and token, from Options
	authOff sync.Once         // noteAuthOff
}

// routes is a ring snapshot as the client uses it.
type routes struct {
	version   uint64
	parts     int
	defaultNS string   // hashes its keys without a prefix (ring.PartitionFor)
	owners    []string // partition → node address
	addrs     []string // every node, in ring order
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
	sec, err := opts.dialSecurity()
	if err != nil {
		return nil, err
	}
	c.dialSec = sec
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

var errClosed = errors.New("ringcache client: closed")
