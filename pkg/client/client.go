// Package client is the Go client of ringcache.
//
// This first version talks to one node, which forwards each call to the key's
// owner. Ring-aware routing, retries, a near cache and GetOrLoad with leases
// come with issue 4; the methods here keep their signatures.
package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Client is safe for concurrent use. Close it when done.
type Client struct {
	cc    *grpc.ClientConn
	cache pb.CacheClient
}

// New connects to the node at addr (host:port). By default the connection
// is plaintext and accepts responses of any size; options given here come
// last and override those defaults (grpc.WithTransportCredentials for TLS).
func New(addr string, opts ...grpc.DialOption) (*Client, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("ringcache client: %w", err)
	}
	return &Client{cc: cc, cache: pb.NewCacheClient(cc)}, nil
}

// Get returns the value of key in namespace ns, and whether it exists.
func (c *Client) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	resp, err := c.cache.Get(ctx, &pb.GetRequest{Namespace: ns, Key: key})
	if err != nil {
		return nil, false, err
	}
	return resp.Value, resp.Found, nil
}

// GetMany returns the keys that exist, by key. A key that failed on its
// owner makes the call return an error naming it, along with the others.
func (c *Client) GetMany(ctx context.Context, ns string, keys []string) (map[string][]byte, error) {
	resp, err := c.cache.GetMany(ctx, &pb.GetManyRequest{Namespace: ns, Keys: keys})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(resp.Results))
	var errs []error
	for _, r := range resp.Results {
		switch {
		case r.ErrorCode != 0:
			errs = append(errs, fmt.Errorf("key %q: %w", r.Key, status.Error(codes.Code(r.ErrorCode), r.ErrorMessage)))
		case r.Found:
			out[r.Key] = r.Value
		}
	}
	return out, errors.Join(errs...)
}

// Set stores value under key for ttl; ttl 0 uses the namespace's TTL.
func (c *Client) Set(ctx context.Context, ns, key string, value []byte, ttl time.Duration) error {
	req := &pb.SetRequest{Namespace: ns, Key: key, Value: value}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	_, err := c.cache.Set(ctx, req)
	return err
}

// Delete removes key.
func (c *Client) Delete(ctx context.Context, ns, key string) error {
	_, err := c.cache.Delete(ctx, &pb.DeleteRequest{Namespace: ns, Key: key})
	return err
}

// Close releases the connection.
func (c *Client) Close() error { return c.cc.Close() }
