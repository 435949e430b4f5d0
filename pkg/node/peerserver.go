package node

import (
	"context"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// peerServer serves calls forwarded by other nodes. It never forwards again:
// the receiver of a forwarded call serves it, whatever its own ring says.
type peerServer struct {
	pb.UnimplementedPeerServer
	n *Node
}

func (s *peerServer) Forward(ctx context.Context, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	n := s.n
	n.stats.forwardedIn.Add(1)
	n.clock.Observe(req.Hlc)
	resp, err := n.serveLocal(ctx, req)
	if resp != nil {
		resp.Hlc = n.clock.Now()
	}
	return resp, err
}
