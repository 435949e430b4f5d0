package node

import (
	"context"
	"fmt"
	"net"
	"sync"

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

// peerPool keeps one gRPC connection per peer address and closes those of
// members that left the ring.
type peerPool struct {
	dial func(ctx context.Context, addr string) (net.Conn, error)

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newPeerPool(dial func(ctx context.Context, addr string) (net.Conn, error)) *peerPool {
	return &peerPool{dial: dial, conns: map[string]*grpc.ClientConn{}}
}

func (p *peerPool) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if p.dial != nil {
		opts = append(opts, grpc.WithContextDialer(p.dial))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = cc
	return cc, nil
}

// Forward implements Forwarder.
func (p *peerPool) Forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	cc, err := p.conn(to.Addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %s: %v", ErrOwnerUnreachable, to.Name, to.Addr, err)
	}
	resp, err := pb.NewPeerClient(cc).Forward(ctx, req)
	if err != nil {
		if status.Code(err) == codes.Unavailable {
			return nil, fmt.Errorf("%w: %s at %s: %v", ErrOwnerUnreachable, to.Name, to.Addr, status.Convert(err).Message())
		}
		return nil, err
	}
	return resp, nil
}

// retain closes connections to addresses not in keep.
func (p *peerPool) retain(keep []ring.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := make(map[string]bool, len(keep))
	for _, m := range keep {
		live[m.Addr] = true
	}
	for addr, cc := range p.conns {
		if !live[addr] {
			cc.Close()
			delete(p.conns, addr)
		}
	}
}

func (p *peerPool) close() { p.retain(nil) }
