package service

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/reason"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Cache is the public Cache service.
type Cache struct {
	pb.UnimplementedCacheServer
	s *Services
}

// one runs a single op through the engine and returns its result.
func (s *Services) one(ctx context.Context, op engine.Op) engine.Result {
	var res engine.Result
	s.e.Execute(ctx, CallerFrom(ctx), []engine.Op{op}, func(_ int, r engine.Result) { res = r }, nil)
	return res
}

// Get implements pb.CacheServer.
func (c *Cache) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	r := c.s.one(ctx, engine.Op{Kind: engine.Get, Namespace: req.Namespace, Key: req.Key})
	if r.Err != nil {
		return nil, engine.StatusErr(r.Err)
	}
	return &pb.GetResponse{Found: r.Found, Value: r.Value}, nil
}

// Set implements pb.CacheServer.
func (c *Cache) Set(ctx context.Context, req *pb.SetRequest) (*pb.SetResponse, error) {
	op, _ := engine.OpFromProto(&pb.PipelineOp{Op: &pb.PipelineOp_Set{Set: req}})
	if r := c.s.one(ctx, op); r.Err != nil {
		return nil, engine.StatusErr(r.Err)
	}
	return &pb.SetResponse{}, nil
}

// Delete implements pb.CacheServer.
func (c *Cache) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	if r := c.s.one(ctx, engine.Op{Kind: engine.Delete, Namespace: req.Namespace, Key: req.Key}); r.Err != nil {
		return nil, engine.StatusErr(r.Err)
	}
	return &pb.DeleteResponse{}, nil
}

// Lease implements pb.CacheServer.
func (c *Cache) Lease(ctx context.Context, req *pb.LeaseRequest) (*pb.LeaseResponse, error) {
	r := c.s.one(ctx, engine.Op{Kind: engine.Lease, Namespace: req.Namespace, Key: req.Key})
	if r.Err != nil {
		return nil, engine.StatusErr(r.Err)
	}
	return &pb.LeaseResponse{Found: r.Found, Value: r.Value, LeaseToken: r.LeaseToken, Wait: r.Wait}, nil
}

// batchLoadParallelism bounds the concurrent waiting work of one GetMany,
// so the misses of a batch load in parallel without flooding the backend.
const batchLoadParallelism = 16

// GetMany implements pb.CacheServer: results in request order; a failed
// key carries its own error, the other keys are unaffected.
func (c *Cache) GetMany(ctx context.Context, req *pb.GetManyRequest) (*pb.GetManyResponse, error) {
	if len(req.Keys) > c.s.cfg.MaxBatch {
		return nil, engine.StatusErr(fmt.Errorf("%w: %d keys requested, at most %d per call", engine.ErrTooManyKeys, len(req.Keys), c.s.cfg.MaxBatch))
	}
	ops := make([]engine.Op, len(req.Keys))
	for i, k := range req.Keys {
		ops[i] = engine.Op{Kind: engine.Get, Namespace: req.Namespace, Key: k}
	}
	results := make([]*pb.KeyResult, len(req.Keys))
	var g errgroup.Group
	g.SetLimit(batchLoadParallelism)
	c.s.e.Execute(ctx, CallerFrom(ctx), ops, func(i int, r engine.Result) {
		results[i] = keyResult(req.Keys[i], r)
	}, func(f func()) { g.Go(func() error { f(); return nil }) })
	_ = g.Wait()
	return &pb.GetManyResponse{Results: results}, nil
}

func keyResult(key string, r engine.Result) *pb.KeyResult {
	if r.Err == nil {
		return &pb.KeyResult{Key: key, Found: r.Found, Value: r.Value}
	}
	st := engine.Status(r.Err)
	// A key that is not valid UTF-8 (it failed for that) cannot go back in
	// a proto3 string: the result stands in its request position.
	return &pb.KeyResult{Key: strings.ToValidUTF8(key, "\uFFFD"), ErrorCode: int32(st.Code()), ErrorMessage: st.Message(), ErrorReason: reason.Of(st.Err())}
}
