package admin

import (
	"context"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// FlushNamespace implements pb.AdminServer (ringcachectl flush, which asks
// every member): service.Services.FlushNamespace on this node.
func (s *Server) FlushNamespace(_ context.Context, req *pb.FlushNamespaceRequest) (*pb.FlushNamespaceResponse, error) {
	return s.cfg.Services.FlushNamespace(s.cfg.Name, req)
}
