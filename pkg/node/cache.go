package node

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// cacheServer is the public Cache service: validate, route, serve or forward.
type cacheServer struct {
	pb.UnimplementedCacheServer
	n *Node
}

// namespace looks up a namespace by name.
func (n *Node) namespace(name string) (*strategy.Namespace, error) {
	ns, ok := n.namespaces[name]
	if !ok {
		if name == "" {
			return nil, fmt.Errorf("%w: the request names none; configured namespaces: %v", ErrUnknownNamespace, n.nsNames)
		}
		return nil, fmt.Errorf("%w %q; configured namespaces: %v", ErrUnknownNamespace, name, n.nsNames)
	}
	return ns, nil
}

// owner returns the member that owns key in namespace ns.
func (n *Node) owner(ns, key string) (ring.Member, error) {
	r := n.ring.Load()
	if r == nil || !n.ready.Load() {
		return ring.Member{}, ErrNotReady
	}
	return r.Owner(routingKey(ns, key)), nil
}

// routingKey is what the ring hashes: the namespace and the key, so equal
// keys of different namespaces spread independently. It is the store key.
func routingKey(ns, key string) string { return strategy.StoreKey(ns, key) }

// forward sends req to the owner, applying ForwardTimeout when the caller set
// no deadline.
func (n *Node) forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.ForwardTimeout)
		defer cancel()
	}
	req.From = n.cfg.Name
	req.Hlc = n.clock.Now()
	n.stats.forwards.Add(1)
	resp, err := n.fwd.Forward(ctx, to, req)
	if err != nil {
		n.stats.forwardErrors.Add(1)
		return nil, err
	}
	n.clock.Observe(resp.Hlc)
	return resp, nil
}

// Request checks, shared by the Cache service and the Peer service: a
// forwarded request is checked again, as nothing stops a client from calling
// Peer directly.

func (n *Node) checkKey(nsName, key string) (*strategy.Namespace, error) {
	ns, err := n.namespace(nsName)
	if err != nil {
		return nil, err
	}
	return ns, ns.ValidateKey(key)
}

func (n *Node) checkSet(req *pb.SetRequest) (*strategy.Namespace, error) {
	ns, err := n.checkKey(req.Namespace, req.Key)
	if err != nil {
		return nil, err
	}
	if err := ns.ValidateValue(req.Value); err != nil {
		return nil, err
	}
	return ns, checkTTL(req)
}

// checkTTL rejects a TTL that is not a valid non-negative duration; the
// namespace checks keys and values itself, but not this.
func checkTTL(req *pb.SetRequest) error {
	if req.Ttl != nil {
		if err := req.Ttl.CheckValid(); err != nil || req.Ttl.AsDuration() < 0 {
			return fmt.Errorf("%w: ttl %v is not a valid non-negative duration", strategy.ErrInvalidArgument, req.Ttl.AsDuration())
		}
	}
	return nil
}

func (n *Node) checkGetMany(req *pb.GetManyRequest) (*strategy.Namespace, error) {
	ns, err := n.namespace(req.Namespace)
	if err != nil {
		return nil, err
	}
	if len(req.Keys) > n.cfg.MaxBatchKeys {
		return nil, fmt.Errorf("%w: %d keys requested, at most %d per call", ErrTooManyKeys, len(req.Keys), n.cfg.MaxBatchKeys)
	}
	return ns, nil
}

func (s *cacheServer) Get(ctx context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	if _, err := s.n.checkKey(req.Namespace, req.Key); err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.n.route(ctx, req.Namespace, req.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Get{Get: req}})
	return resp.GetGet(), err
}

func (s *cacheServer) Set(ctx context.Context, req *pb.SetRequest) (*pb.SetResponse, error) {
	if _, err := s.n.checkSet(req); err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.n.route(ctx, req.Namespace, req.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Set{Set: req}})
	return resp.GetSet(), err
}

func (s *cacheServer) Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	if _, err := s.n.checkKey(req.Namespace, req.Key); err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.n.route(ctx, req.Namespace, req.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Delete{Delete: req}})
	return resp.GetDelete(), err
}

func (s *cacheServer) Lease(ctx context.Context, req *pb.LeaseRequest) (*pb.LeaseResponse, error) {
	if _, err := s.n.checkKey(req.Namespace, req.Key); err != nil {
		return nil, toStatus(err)
	}
	resp, err := s.n.route(ctx, req.Namespace, req.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Lease{Lease: req}})
	return resp.GetLease(), err
}

// route serves op here when this node owns the key, and forwards it to the
// owner otherwise. Errors are gRPC statuses.
func (n *Node) route(ctx context.Context, ns, key string, op *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	owner, err := n.owner(ns, key)
	if err != nil {
		return nil, toStatus(err)
	}
	if owner.Name == n.cfg.Name {
		return n.serveLocal(ctx, op)
	}
	if n.hot != nil {
		return n.forwardHot(ctx, owner, ns, key, op)
	}
	resp, err := n.forward(ctx, owner, op)
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// serveLocal runs one operation on this node as the key's owner. A
// forwarded request is checked again, since nothing stops a client from
// calling Peer directly, but only for what the namespace does not check
// itself (its own existence, the TTL, the batch size): the namespace
// validates keys and values on every call. Errors are gRPC statuses.
func (n *Node) serveLocal(ctx context.Context, op *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	switch op := op.Op.(type) {
	case *pb.ForwardRequest_Get:
		ns, err := n.namespace(op.Get.Namespace)
		if err != nil {
			return nil, toStatus(err)
		}
		v, found, err := ns.Get(ctx, op.Get.Key)
		if err != nil {
			return nil, toStatus(err)
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Get{Get: &pb.GetResponse{Found: found, Value: v}}}, nil
	case *pb.ForwardRequest_Set:
		ns, err := n.namespace(op.Set.Namespace)
		if err == nil {
			err = checkTTL(op.Set)
		}
		if err != nil {
			return nil, toStatus(err)
		}
		if err := ns.SetLeased(ctx, op.Set.Key, op.Set.Value, op.Set.Ttl.AsDuration(), op.Set.LeaseToken); err != nil {
			return nil, toStatus(err)
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Set{Set: &pb.SetResponse{}}}, nil
	case *pb.ForwardRequest_Delete:
		ns, err := n.namespace(op.Delete.Namespace)
		if err != nil {
			return nil, toStatus(err)
		}
		if err := ns.Delete(ctx, op.Delete.Key); err != nil {
			return nil, toStatus(err)
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Delete{Delete: &pb.DeleteResponse{}}}, nil
	case *pb.ForwardRequest_Lease:
		ns, err := n.namespace(op.Lease.Namespace)
		if err != nil {
			return nil, toStatus(err)
		}
		r, err := ns.Lease(ctx, op.Lease.Key)
		if err != nil {
			return nil, toStatus(err)
		}
		return &pb.ForwardResponse{Result: &pb.ForwardResponse_Lease{Lease: &pb.LeaseResponse{Found: r.Found, Value: r.Value, LeaseToken: r.Token, Wait: r.Wait}}}, nil
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

// GetMany splits the keys by owner, serves each group (forwarding remote
// groups in parallel) and returns results in request order. A failed group
// marks its keys with an error code; the other keys are unaffected.
func (s *cacheServer) GetMany(ctx context.Context, req *pb.GetManyRequest) (*pb.GetManyResponse, error) {
	ns, err := s.n.checkGetMany(req)
	if err != nil {
		return nil, toStatus(err)
	}
	r := s.n.ring.Load()
	if r == nil || !s.n.ready.Load() {
		return nil, toStatus(ErrNotReady)
	}
	results := make([]*pb.KeyResult, len(req.Keys))
	groups := map[string][]int{} // owner name → indexes into req.Keys
	owners := map[string]ring.Member{}
	for i, key := range req.Keys {
		if err := ns.ValidateKey(key); err != nil {
			results[i] = errResult(key, err)
			continue
		}
		o := r.Owner(routingKey(req.Namespace, key))
		groups[o.Name] = append(groups[o.Name], i)
		owners[o.Name] = o
	}
	var wg sync.WaitGroup
	for name, idx := range groups {
		if name == s.n.cfg.Name {
			wg.Go(func() { s.n.localGetMany(ctx, ns, req.Keys, idx, results) })
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := make([]string, len(idx))
			for j, i := range idx {
				keys[j] = req.Keys[i]
			}
			resp, err := s.n.forward(ctx, owners[name], &pb.ForwardRequest{
				Op: &pb.ForwardRequest_GetMany{GetMany: &pb.GetManyRequest{Namespace: req.Namespace, Keys: keys}},
			})
			got := resp.GetGetMany().GetResults()
			for j, i := range idx {
				switch {
				case err != nil:
					results[i] = errResult(req.Keys[i], err)
				case j < len(got):
					results[i] = got[j]
				default:
					results[i] = errResult(req.Keys[i], fmt.Errorf("owner %s returned %d results for %d keys", name, len(got), len(keys)))
				}
			}
		}()
	}
	wg.Wait()
	return &pb.GetManyResponse{Results: results}, nil
}

// batchLoadParallelism bounds the concurrent Gets of one batch on its owner,
// so the misses of a batch load in parallel without flooding the backend.
const batchLoadParallelism = 16

func (n *Node) localGetMany(ctx context.Context, ns *strategy.Namespace, keys []string, idx []int, results []*pb.KeyResult) {
	var g errgroup.Group
	g.SetLimit(batchLoadParallelism)
	for _, i := range idx {
		g.Go(func() error {
			v, found, err := ns.Get(ctx, keys[i])
			if err != nil {
				results[i] = errResult(keys[i], err)
			} else {
				results[i] = &pb.KeyResult{Key: keys[i], Found: found, Value: v}
			}
			return nil
		})
	}
	_ = g.Wait()
}

func errResult(key string, err error) *pb.KeyResult {
	st := status.Convert(toStatus(err))
	return &pb.KeyResult{Key: key, ErrorCode: int32(st.Code()), ErrorMessage: st.Message()}
}
