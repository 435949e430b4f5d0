package node

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	resp, err := s.serve(ctx, req)
	if resp != nil {
		resp.Hlc = n.clock.Now()
	}
	return resp, err
}

func (s *peerServer) serve(ctx context.Context, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	n := s.n
	switch op := req.Op.(type) {
	case *pb.ForwardRequest_Get:
		ns, err := n.checkKey(op.Get.Namespace, op.Get.Key)
		if err != nil {
			return nil, toStatus(err)
		}
		resp, err := n.localGet(ctx, ns, op.Get.Key)
		if err != nil {
			return nil, err
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Get{Get: resp}}, nil
	case *pb.ForwardRequest_Set:
		ns, err := n.checkSet(op.Set)
		if err != nil {
			return nil, toStatus(err)
		}
		resp, err := n.localSet(ctx, ns, op.Set)
		if err != nil {
			return nil, err
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Set{Set: resp}}, nil
	case *pb.ForwardRequest_Delete:
		ns, err := n.checkKey(op.Delete.Namespace, op.Delete.Key)
		if err != nil {
			return nil, toStatus(err)
		}
		resp, err := n.localDelete(ctx, ns, op.Delete.Key)
		if err != nil {
			return nil, err
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Delete{Delete: resp}}, nil
	case *pb.ForwardRequest_GetMany:
		ns, err := n.checkGetMany(op.GetMany)
		if err != nil {
			return nil, toStatus(err)
		}
		keys := op.GetMany.Keys
		results := make([]*pb.KeyResult, len(keys))
		idx := make([]int, len(keys))
		for i := range idx {
			idx[i] = i
		}
		n.localGetMany(ctx, ns, keys, idx, results)
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_GetMany{GetMany: &pb.GetManyResponse{Results: results}}}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "forward request carries no operation")
}
