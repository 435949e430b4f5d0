package node

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Forwarder sends a request to the key's owner. It is the node's seam to its
// peers: tests replace it to count or cut forwarding.
type Forwarder interface {
	Forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error)
}

// peerPool keeps one gRPC connection per peer address. A connection to a
// member that left the ring is closed only after linger, so calls still in
// flight to a draining node can finish.
type peerPool struct {
	dial   func(ctx context.Context, addr string) (net.Conn, error)
	linger time.Duration
	opts   []grpc.DialOption // more dial options (telemetry)

	mu        sync.Mutex
	conns     map[string]*grpc.ClientConn
	lingering map[*grpc.ClientConn]*time.Timer // closing after linger
	closed    bool
}

func newPeerPool(dial func(ctx context.Context, addr string) (net.Conn, error), linger time.Duration, opts ...grpc.DialOption) *peerPool {
	return &peerPool{dial: dial, linger: linger, opts: opts, conns: map[string]*grpc.ClientConn{}, lingering: map[*grpc.ClientConn]*time.Timer{}}
}

func (p *peerPool) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrNotReady
	}
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Peers are trusted and answer with values up to the namespace
		// limit, or batches of them: no client-side cap.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}
	if p.dial != nil {
		opts = append(opts, grpc.WithContextDialer(p.dial))
	}
	opts = append(opts, p.opts...)
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = cc
	return cc, nil
}

// Forward implements Forwarder. Transport failures come back wrapped in
// ErrOwnerUnreachable; the owner's own status errors pass through unchanged.
func (p *peerPool) Forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	cc, err := p.conn(to.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %s: %v", ErrOwnerUnreachable, to.Name, to.Addr, err)
	}
	resp, err := pb.NewPeerClient(cc).Forward(ctx, req)
	if err != nil {
		code := status.Code(err)
		// Canceled while our caller is still waiting means the connection
		// went away under the call (the owner left), not that the caller
		// gave up.
		if code == codes.Unavailable || (code == codes.Canceled && ctx.Err() == nil) {
			return nil, fmt.Errorf("%w: %s at %s: %v", ErrOwnerUnreachable, to.Name, to.Addr, status.Convert(err).Message())
		}
		return nil, err
	}
	return resp, nil
}

// retain schedules the close of connections to addresses not in keep.
func (p *peerPool) retain(keep []ring.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := make(map[string]bool, len(keep))
	for _, m := range keep {
		live[m.Addr] = true
	}
	for addr, cc := range p.conns {
		if !live[addr] {
			delete(p.conns, addr)
			p.lingering[cc] = time.AfterFunc(p.linger, func() {
				p.mu.Lock()
				delete(p.lingering, cc)
				p.mu.Unlock()
				cc.Close()
			})
		}
	}
}

// close closes every connection at once; the pool hands out no more.
func (p *peerPool) close() {
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
