package node

import (
	"context"

	"github.com/ringcache/ringcache/internal/membership"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// adminServer is the operator plane behind ringcachectl.
type adminServer struct {
	pb.UnimplementedAdminServer
	n *Node
}

var memberStates = map[membership.State]pb.MemberState{
	membership.StateAlive: pb.MemberState_MEMBER_STATE_ALIVE,
	membership.StateDead:  pb.MemberState_MEMBER_STATE_DEAD,
	membership.StateLeft:  pb.MemberState_MEMBER_STATE_LEFT,
}

func (s *adminServer) Members(context.Context, *pb.MembersRequest) (*pb.MembersResponse, error) {
	resp := &pb.MembersResponse{Self: s.n.cfg.Name}
	for _, m := range s.n.members.Members() {
		resp.Members = append(resp.Members, &pb.Member{
			Name: m.Name, GrpcAddr: m.GRPCAddr, GossipAddr: m.GossipAddr, State: memberStates[m.State],
		})
	}
	return resp, nil
}

func (s *adminServer) Ring(context.Context, *pb.RingRequest) (*pb.RingResponse, error) {
	r := s.n.ring.Load()
	if r == nil {
		return nil, toStatus(ErrNotReady)
	}
	resp := &pb.RingResponse{
		Version:         r.Version(),
		PartitionCount:  uint32(r.PartitionCount()),
		PartitionOwners: make([]string, r.PartitionCount()),
		LoadFactor:      r.LoadFactor(),
	}
	for p := range resp.PartitionOwners {
		resp.PartitionOwners[p] = r.PartitionOwner(p).Name
	}
	for _, m := range r.Members() {
		resp.Members = append(resp.Members, &pb.RingMember{Name: m.Name, GrpcAddr: m.Addr, Partitions: uint32(r.Partitions(m.Name))})
	}
	return resp, nil
}

func (s *adminServer) Locate(_ context.Context, req *pb.LocateRequest) (*pb.LocateResponse, error) {
	ns, err := s.n.namespace(req.Namespace)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := ns.ValidateKey(req.Key); err != nil {
		return nil, toStatus(err)
	}
	r := s.n.ring.Load()
	if r == nil {
		return nil, toStatus(ErrNotReady)
	}
	rk := routingKey(req.Namespace, req.Key)
	o := r.Owner(rk)
	return &pb.LocateResponse{Partition: uint32(r.PartitionOf(rk)), Owner: o.Name, OwnerGrpcAddr: o.Addr}, nil
}

func (s *adminServer) Stats(context.Context, *pb.StatsRequest) (*pb.StatsResponse, error) {
	n := s.n
	st := n.store.Stats()
	resp := &pb.StatsResponse{
		Node:          n.cfg.Name,
		Store:         &pb.StoreStats{Entries: st.Entries, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions},
		Forwards:      n.stats.forwards.Load(),
		ForwardErrors: n.stats.forwardErrors.Load(),
		ForwardedIn:   n.stats.forwardedIn.Load(),
	}
	if n.hot != nil {
		h := n.hot.stats()
		resp.HotCache = &pb.HotCacheStats{
			Hits: h.Hits, Fills: h.Fills, Invalidations: h.Invalidations, Resets: h.Resets,
			Entries: h.Entries, Bytes: h.Bytes, MaxBytes: h.MaxBytes, Streams: h.Streams,
		}
	}
	for _, name := range n.nsNames {
		ns := n.namespaces[name].Stats()
		resp.Namespaces = append(resp.Namespaces, &pb.NamespaceStats{
			Name: name, Gets: ns.Gets, Hits: ns.Hits, Misses: ns.Misses,
			Loads: ns.Loads, LoadsDeduplicated: ns.LoadsDeduped, LoadErrors: ns.LoadErrors,
			NegativeHits: ns.NegativeHits, Sets: ns.Sets, Deletes: ns.Deletes,
			WriteErrors: ns.WriteErrors, Backpressure: ns.Backpressure, Refreshes: ns.Refreshes, PendingHits: ns.PendingHits,
		})
	}
	return resp, nil
}
