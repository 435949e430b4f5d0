package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ringcache/ringcache/internal/invalwatch"
	"github.com/ringcache/ringcache/internal/reason"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Get returns the value of key in namespace ns, and whether it exists.
// With a near cache, a Get of a namespace it covers is answered from the
// client's memory when it can be, and its result is kept there.
func (c *Client) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	var tok nearToken
	nc := c.near
	if nc != nil && nc.enabled(ns) {
		if e, ok := nc.get(ns, key); ok {
			return e.value, e.found, nil
		}
		tok = nc.token(ns, key)
	} else {
		nc = nil
	}
	var (
		value []byte
		found bool
	)
	err := c.call(ctx, ns, key, false, func(ctx context.Context, n *nodeConn) (err error) {
		req := &pb.GetRequest{Namespace: ns, Key: key}
		value, found, err = n.one(ctx, &pb.PipelineOp{Op: &pb.PipelineOp_Get{Get: req}}, func(ctx context.Context) ([]byte, bool, error) {
			resp, err := n.cache.Get(ctx, req)
			return resp.GetValue(), resp.GetFound(), err
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if nc != nil {
		nc.fill(ns, key, tok, value, found)
	}
	return value, found, nil
}

// Set stores value under key for ttl; ttl 0 uses the namespace's TTL.
func (c *Client) Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	return c.set(ctx, ns, key, value, ttl, 0)
}

func (c *Client) set(ctx context.Context, ns, key string, value []byte, ttl time.Duration, lease uint64) error {
	req := &pb.SetRequest{Namespace: ns, Key: key, Value: value, LeaseToken: lease}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	defer c.invalidateNear(ns, key)()
	return c.call(ctx, ns, key, true, func(ctx context.Context, n *nodeConn) error {
		_, _, err := n.one(ctx, &pb.PipelineOp{Op: &pb.PipelineOp_Set{Set: req}}, func(ctx context.Context) ([]byte, bool, error) {
			_, err := n.cache.Set(ctx, req)
			return nil, false, err
		})
		return err
	})
}

// invalidateNear drops key from the near cache before a write and again
// after it (the returned func), so no Get racing the write keeps the old
// value.
func (c *Client) invalidateNear(ns, key string) func() {
	if c.near == nil || !c.near.enabled(ns) {
		return func() {}
	}
	c.near.invalidate(ns, key)
	return func() { c.near.invalidate(ns, key) }
}

// Delete removes key.
func (c *Client) Delete(ctx context.Context, ns, key string) error {
	defer c.invalidateNear(ns, key)()
	return c.call(ctx, ns, key, true, func(ctx context.Context, n *nodeConn) error {
		req := &pb.DeleteRequest{Namespace: ns, Key: key}
		_, _, err := n.one(ctx, &pb.PipelineOp{Op: &pb.PipelineOp_Delete{Delete: req}}, func(ctx context.Context) ([]byte, bool, error) {
			_, err := n.cache.Delete(ctx, req)
			return nil, false, err
		})
		return err
	})
}

// GetMany returns the keys that exist, by key. The keys are split by owner
// and fetched from the owners in parallel. A key that failed makes the call
// return an error naming it, along with the values of the others.
func (c *Client) GetMany(ctx context.Context, ns string, keys []string) (map[string][]byte, error) {
	groups := map[string][]string{} // first candidate (owner) → keys
	var errs []error
	for _, k := range keys {
		if err := checkText(ns, k); err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", k, err))
			continue
		}
		owner := c.candidates(ns, k)[0]
		groups[owner] = append(groups[owner], k)
	}
	var (
		mu  sync.Mutex
		out = make(map[string][]byte, len(keys))
		wg  sync.WaitGroup
	)
	for _, group := range groups {
		wg.Go(func() {
			var resp *pb.GetManyResponse
			// Routed by the group's first key: they share its owner.
			err := c.call(ctx, ns, group[0], false, func(ctx context.Context, n *nodeConn) error {
				return unary(ctx, func(ctx context.Context) (err error) {
					resp, err = n.cache.GetMany(ctx, &pb.GetManyRequest{Namespace: ns, Keys: group})
					return err
				})
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("keys %q: %w", group, err))
				return
			}
			for _, r := range resp.Results {
				switch {
				case r.ErrorCode != 0:
					errs = append(errs, fmt.Errorf("key %q: %w", r.Key, keyError(r)))
				case r.Found:
					out[r.Key] = r.Value
				}
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Loader loads a missing value for GetOrLoad from the system of record.
type Loader func(ctx context.Context) ([]byte, error)

// GetOrLoad returns the cached value of key or loads it with load, so that
// concurrent callers anywhere in the cluster run load once: the first caller
// gets a lease and loads, the others wait (up to Options.LeaseWait) for its
// value. The loaded value is stored only if nothing wrote or deleted the key
// since the lease was granted; otherwise the caller still gets its loaded
// value, but it is not cached. In a read-through namespace the cluster loads
// the key itself and load is not called.
//
// When the cluster cannot be reached, GetOrLoad returns the error, or with
// Options.FailOpen calls load directly.
func (c *Client) GetOrLoad(ctx context.Context, ns, key string, load Loader) ([]byte, error) {
	waitUntil := time.Now().Add(c.opts.LeaseWait)
	backoff := 2 * time.Millisecond
	for {
		var resp *pb.LeaseResponse
		err := c.call(ctx, ns, key, false, func(ctx context.Context, n *nodeConn) error {
			return unary(ctx, func(ctx context.Context) (err error) {
				resp, err = n.cache.Lease(ctx, &pb.LeaseRequest{Namespace: ns, Key: key})
				return err
			})
		})
		switch {
		case err != nil && c.opts.FailOpen && unreachable(err):
			c.failOpen.Add(1)
			return load(ctx)
		case err != nil:
			return nil, err
		case resp.Found:
			return resp.Value, nil
		case resp.LeaseToken != 0:
			v, err := load(ctx)
			if err != nil {
				return nil, err // the lease expires; another caller will load
			}
			// A failed Set costs only the caching: the value is loaded.
			if err := c.set(ctx, ns, key, v, 0, resp.LeaseToken); status.Code(err) == codes.Aborted {
				c.leaseRejected.Add(1) // the key changed while we loaded: keep it uncached
			}
			return v, nil
		case !resp.Wait:
			return nil, nil // a cached not-found
		case time.Now().After(waitUntil):
			return load(ctx) // the lease holder is slow: do not wait forever
		}
		if err := invalwatch.Sleep(ctx, backoff); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// Owner returns the address of the node the client sends key to: its
// owner, once the client has a ring.
func (c *Client) Owner(ns, key string) string {
	if r := c.ring.Load(); r != nil {
		return r.owner(ns, key)
	}
	return c.opts.Seeds[0]
}

// keyError is the error of one failed key of a GetMany, with the node's
// reason.
func keyError(r *pb.KeyResult) error {
	return resultError(codes.Code(r.ErrorCode), r.ErrorMessage, r.ErrorReason, 0)
}

// resultError rebuilds the status a node reported for one op of a batch.
func resultError(code codes.Code, msg, why string, retry time.Duration) error {
	if why == "" {
		return status.Error(code, msg)
	}
	return reason.Status(code, why, msg, retry).Err()
}
