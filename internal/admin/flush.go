package admin

import (
	"context"

	"github.com/ringcache/ringcache/internal/engine"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// FlushNamespace implements pb.AdminServer (ringcachectl flush): it
// flushes the namespace on this node (strategy.Namespace.Flush, constant
// time; the journal is untouched), then ends the invalidation streams that
// watch it, so hot caches and near caches drop their copies. In that order:
// a subscriber that subscribes again reads the flushed state.
func (s *Server) FlushNamespace(_ context.Context, req *pb.FlushNamespaceRequest) (*pb.FlushNamespaceResponse, error) {
	ns, err := s.cfg.Engine.Namespace(req.Namespace)
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	r, err := ns.Flush(req.Prefix)
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	streams := s.cfg.Services.ResetWatchers(req.Namespace)
	// The prefix is part of keys: it is not logged.
	s.log().Info("namespace flushed", "namespace", req.Namespace, "by_prefix", req.Prefix != "",
		"epoch", r.Epoch, "prefix_tombstones", r.PrefixTombstones, "folded", r.Folded, "streams_reset", streams)
	return &pb.FlushNamespaceResponse{
		Node: s.cfg.Name, Epoch: r.Epoch, PrefixTombstones: uint32(r.PrefixTombstones),
		Folded: r.Folded, StreamsReset: uint32(streams),
	}, nil
}
