package service

import (
	"context"

	"github.com/ringcache/ringcache/internal/engine"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// FlushNamespace flushes namespace req.Namespace (or its keys under
// req.Prefix) on this node: strategy.Namespace.Flush, constant time, the
// journal untouched; then it ends the invalidation streams that watch it,
// so hot caches and near caches drop their copies. In that order: a
// subscriber that subscribes again reads the flushed state. The Admin
// service (ringcachectl flush) and Peer.FlushNamespace (a cluster-wide
// flush started on another node) both run it; node names the node in the
// answer.
func (s *Services) FlushNamespace(node string, req *pb.FlushNamespaceRequest) (*pb.FlushNamespaceResponse, error) {
	ns, err := s.e.Namespace(req.GetNamespace())
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	r, err := ns.Flush(req.GetPrefix())
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	streams := s.ResetWatchers(req.GetNamespace())
	s.e.SweepFlushed(req.GetNamespace()) // frees what it hid, in the background
	// The prefix is part of keys: it is not logged.
	s.log.Info("namespace flushed", "namespace", req.GetNamespace(), "by_prefix", req.GetPrefix() != "",
		"epoch", r.Epoch, "prefix_tombstones", r.PrefixTombstones, "folded", r.Folded, "streams_reset", streams)
	return &pb.FlushNamespaceResponse{
		Node: node, Epoch: r.Epoch, PrefixTombstones: uint32(r.PrefixTombstones),
		Folded: r.Folded, StreamsReset: uint32(streams),
	}, nil
}

// FlushNamespace implements pb.PeerServer: a peer flushes the namespace
// cluster-wide (the Redis door's FLUSHDB) and asks this node for its part.
func (p *Peer) FlushNamespace(_ context.Context, req *pb.PeerFlushNamespaceRequest) (*pb.PeerFlushNamespaceResponse, error) {
	resp, err := p.s.FlushNamespace(p.s.e.Self(), req.GetFlush())
	if err != nil {
		return nil, err
	}
	return &pb.PeerFlushNamespaceResponse{Flushed: resp}, nil
}
