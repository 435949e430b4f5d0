// Package peer is a node's transport to its peers: one pooled gRPC
// connection per peer, and the client side of the Peer service (Forward,
// Lookup, the replication streams, Handover, StillPending) and of the
// invalidation streams the hot cache follows.
//
// A call that fails in the transport comes back wrapped in ErrUnreachable
// when the peer surely received nothing (no connection could be made), or
// in ErrConnectionLost when it may have (the connection broke in flight);
// the peer's own status errors pass through unchanged.
package peer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/codec"
	"github.com/ringcache/ringcache/internal/rawnet"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/internal/sent"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Errors of a call to a peer.
var (
	// ErrUnreachable: the peer could not be reached and received nothing.
	ErrUnreachable = errors.New("owner unreachable")
	// ErrConnectionLost: the connection broke while the call was in
	// flight; the peer may have applied it.
	ErrConnectionLost = errors.New("connection to the owner lost")
	// ErrClosed: the pool is closed.
	ErrClosed = errors.New("peer pool closed")
)

// Config configures a Pool.
type Config struct {
	// Linger is how long a connection to a member that left the ring
	// stays open, so calls in flight to a draining node can finish.
	Linger time.Duration
	// Credentials secure the connections; nil means plaintext.
	Credentials credentials.TransportCredentials
	// Dialer replaces the TCP dialer (tests cut links with it).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// DialOptions come last (telemetry).
	DialOptions []grpc.DialOption
	// Latency, when set, is told the round trip of every Forward.
	Latency func(time.Duration)
}

// peerMaxBackoff bounds the wait between attempts to connect to a peer.
const peerMaxBackoff = time.Second

// Pool keeps one gRPC connection per peer address. Safe for concurrent use.
type Pool struct {
	cfg Config

	ctx     context.Context // ends with Close: the forwarding streams' context
	cancel  context.CancelFunc
	streams sync.WaitGroup // goroutines of the forwarding streams; added under mu while !closed

	mu        sync.Mutex
	conns     map[string]*grpc.ClientConn
	lingering map[*grpc.ClientConn]*time.Timer // closing after Linger
	pipes     map[string]*fwdPipe              // forwarding streams by address
	closed    bool
}

// New returns a Pool.
func New(cfg Config) *Pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, ctx: ctx, cancel: cancel, conns: map[string]*grpc.ClientConn{}, lingering: map[*grpc.ClientConn]*time.Timer{}, pipes: map[string]*fwdPipe{}}
}

// goStream runs f on a goroutine Close waits for, unless the pool is
// closed.
func (p *Pool) goStream(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.streams.Go(f)
	return true
}

// Conn returns the connection to addr, dialling (lazily) if there is none.
func (p *Pool) Conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	creds := p.cfg.Credentials
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// Peers answer with values up to the namespace limit, or batches
		// of them: no client-side cap.
		// vtproto's generated code, not protobuf's reflection (internal/codec).
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.ForceCodecV2(codec.Codec{})),
		grpc.WithStatsHandler(sent.Handler{}),
		// Fixed windows, as the server uses: no BDP pings on busy links.
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(1 << 20),
		// A peer that refused a connection (restarting, or not listening
		// yet) is tried again within peerMaxBackoff, not gRPC's default of
		// up to two minutes: calls to it fail fast until it is.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: peerMaxBackoff,
		}, MinConnectTimeout: 5 * time.Second}),
	}
	dial := p.cfg.Dialer
	if dial == nil {
		dial = rawnet.Dial // raw reads and writes: internal/rawnet
	}
	opts = append(opts, grpc.WithContextDialer(dial))
	opts = append(opts, p.cfg.DialOptions...)
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = cc
	return cc, nil
}

// Forward sends a batch of ops to their owner: over the forwarding stream
// to it (ForwardStream, shared by every batch to that peer), or as a unary
// Forward call when the peer lacks the stream.
//
// A call whose context carries a sampled span goes unary, so that its
// trace continues on the owner (the stream is one long RPC, outside any
// trace).
func (p *Pool) Forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	if p.cfg.Latency != nil {
		defer func(start time.Time) { p.cfg.Latency(time.Since(start)) }(time.Now())
	}
	if fp := p.pipe(to.Addr); fp != nil && len(req.Ops) > 0 && !trace.SpanContextFromContext(ctx).IsSampled() {
		resp, err := fp.forward(ctx, to, req)
		if !errors.Is(err, errStreamUnsupported) {
			return resp, err
		}
	}
	var resp *pb.ForwardResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).Forward(ctx, req)
		return err
	})
	return resp, err
}

// Lookup asks a peer for its pending write-behind write of a key.
func (p *Pool) Lookup(ctx context.Context, to ring.Member, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	var resp *pb.LookupResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).Lookup(ctx, req)
		return err
	})
	return resp, err
}

// Merged tells a peer that this node took it back into its ring.
func (p *Pool) Merged(ctx context.Context, to ring.Member, req *pb.MergedRequest) (*pb.MergedResponse, error) {
	var resp *pb.MergedResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).Merged(ctx, req)
		return err
	})
	return resp, err
}

// GetTable fetches a peer's partition table.
func (p *Pool) GetTable(ctx context.Context, to ring.Member, req *pb.GetTableRequest) (*pb.GetTableResponse, error) {
	var resp *pb.GetTableResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).GetTable(ctx, req)
		return err
	})
	return resp, err
}

// Replicate opens a Peer.Replicate stream to a replica (internal/replica).
// A failure to reach it wraps ErrUnreachable.
func (p *Pool) Replicate(ctx context.Context, to ring.Member) (pb.Peer_ReplicateClient, error) {
	cc, err := p.Conn(to.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %s: %w", ErrUnreachable, to.Name, to.Addr, err)
	}
	return pb.NewPeerClient(cc).Replicate(ctx)
}

// Handover gives a peer write-behind records to own.
func (p *Pool) Handover(ctx context.Context, to ring.Member, req *pb.HandoverRequest) (*pb.HandoverResponse, error) {
	var resp *pb.HandoverResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).Handover(ctx, req)
		return err
	})
	return resp, err
}

// PushTable offers a peer a partition table.
func (p *Pool) PushTable(ctx context.Context, to ring.Member, req *pb.PushTableRequest) (*pb.PushTableResponse, error) {
	var resp *pb.PushTableResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).PushTable(ctx, req)
		return err
	})
	return resp, err
}

// StillPending asks the origin of replica copies which are still pending.
func (p *Pool) StillPending(ctx context.Context, to ring.Member, req *pb.StillPendingRequest) (*pb.StillPendingResponse, error) {
	var resp *pb.StillPendingResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).StillPending(ctx, req)
		return err
	})
	return resp, err
}

// FlushNamespace asks a peer to flush a namespace on its side of a
// cluster-wide flush.
func (p *Pool) FlushNamespace(ctx context.Context, to ring.Member, req *pb.FlushNamespaceRequest) (*pb.FlushNamespaceResponse, error) {
	var resp *pb.PeerFlushNamespaceResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).FlushNamespace(ctx, &pb.PeerFlushNamespaceRequest{Flush: req})
		return err
	})
	return resp.GetFlushed(), err
}

// Transfer opens a stream of the cached entries a peer holds for
// partitions this node took from it (the warm hand-over).
func (p *Pool) Transfer(ctx context.Context, to ring.Member, req *pb.TransferRequest) (pb.Peer_TransferClient, error) {
	cc, err := p.Conn(to.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %s: %w", ErrUnreachable, to.Name, to.Addr, err)
	}
	return pb.NewPeerClient(cc).Transfer(ctx, req)
}

// TransferLookup asks a peer for the entry it holds of one key for this
// node (a miss during the warm hand-over).
func (p *Pool) TransferLookup(ctx context.Context, to ring.Member, req *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error) {
	var resp *pb.TransferLookupResponse
	err := p.call(ctx, to, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewPeerClient(cc).TransferLookup(ctx, req)
		return err
	})
	return resp, err
}

// WatchInvalidations opens a stream of every namespace's changes on a peer.
func (p *Pool) WatchInvalidations(ctx context.Context, to ring.Member) (pb.Cache_WatchInvalidationsClient, error) {
	cc, err := p.Conn(to.Addr)
	if err != nil {
		return nil, err
	}
	return pb.NewCacheClient(cc).WatchInvalidations(ctx, &pb.WatchInvalidationsRequest{})
}

// call runs fn on the connection to m and classifies transport failures.
func (p *Pool) call(ctx context.Context, m ring.Member, fn func(context.Context, *grpc.ClientConn) error) error {
	cc, err := p.Conn(m.Addr)
	if err != nil {
		return fmt.Errorf("%w: %s at %s: %w", ErrUnreachable, m.Name, m.Addr, err)
	}
	tctx, tr := sent.Track(ctx)
	err = fn(tctx, cc)
	if err == nil || reason.FromNode(err) {
		return err // the peer's own answer
	}
	code := status.Code(err)
	// Canceled while our caller still waits means the connection went away
	// under the call (the peer left), not that the caller gave up.
	if code != codes.Unavailable && (code != codes.Canceled || ctx.Err() != nil) {
		return err
	}
	msg := status.Convert(err).Message()
	if !tr.Sent() {
		return fmt.Errorf("%w: %s at %s: %s", ErrUnreachable, m.Name, m.Addr, msg)
	}
	return fmt.Errorf("%w: %s at %s: %s", ErrConnectionLost, m.Name, m.Addr, msg)
}

// Redial has the connections to members that failed to connect try again
// at once. A member a table lists again (back from a restart at its
// address) would otherwise fail every call fast until the end of the
// backoff its absence built up (up to peerMaxBackoff), the replication of
// writes that need a copy on it included: calls to a dead previous owner
// (handoff lookups) keep a connection to its address failing meanwhile.
func (p *Pool) Redial(members []ring.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range members {
		if cc := p.conns[m.Addr]; cc != nil && cc.GetState() == connectivity.TransientFailure {
			cc.ResetConnectBackoff()
		}
	}
}

// Retain schedules the close of connections to addresses not in keep.
func (p *Pool) Retain(keep []ring.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := make(map[string]bool, len(keep))
	for _, m := range keep {
		live[m.Addr] = true
	}
	for addr := range p.pipes {
		if !live[addr] {
			delete(p.pipes, addr) // its stream ends with the connection
		}
	}
	for addr, cc := range p.conns {
		if live[addr] {
			continue
		}
		delete(p.conns, addr)
		p.lingering[cc] = time.AfterFunc(p.cfg.Linger, func() {
			p.mu.Lock()
			delete(p.lingering, cc)
			p.mu.Unlock()
			cc.Close()
		})
	}
}

// Close closes every connection at once; the pool hands out no more.
func (p *Pool) Close() {
	defer p.streams.Wait()
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for addr, cc := range p.conns {
		cc.Close()
		delete(p.conns, addr)
	}
	for cc, t := range p.lingering {
		t.Stop()
		cc.Close()
		delete(p.lingering, cc)
	}
}
