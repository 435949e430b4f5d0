package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ringcache/ringcache/pkg/client"
)

// Ringcache is a Target on one namespace of a cluster, through pkg/client
// (ring-aware routing, one Pipeline stream per node unless unary).
type Ringcache struct {
	c  *client.Client
	ns string
}

// NewRingcache connects to the cluster that opts.Seeds belong to.
func NewRingcache(opts client.Options, namespace string) (*Ringcache, error) {
	if namespace == "" {
		return nil, errors.New("a namespace is required")
	}
	c, err := client.New(opts)
	if err != nil {
		return nil, err
	}
	return &Ringcache{c: c, ns: namespace}, nil
}

// Client returns the underlying client.
func (r *Ringcache) Client() *client.Client { return r.c }

// Get implements Target.
func (r *Ringcache) Get(ctx context.Context, key string) (bool, error) {
	_, found, err := r.c.Get(ctx, r.ns, key)
	return found, err
}

// Set implements Target; the namespace's TTL applies.
func (r *Ringcache) Set(ctx context.Context, key string, value []byte) error {
	return r.c.Set(ctx, r.ns, key, value, 0)
}

// Close implements Target.
func (r *Ringcache) Close() error { return r.c.Close() }

// Frames returns the Pipeline frames the client has sent.
func (r *Ringcache) Frames() uint64 { return r.c.Stats().PipelineFrames }

// Redis is a Target on a Redis server through go-redis, one pooled
// connection per caller (no pipelining: each call is a round trip, as an
// application's GET/SET would be).
type Redis struct {
	c      *redis.Client
	prefix string
}

// NewRedis connects to rawURL (redis://host:port[/db]) with a pool of
// poolSize connections. Keys are prefixed with namespace and a colon, so
// both targets see keys of the same length.
func NewRedis(rawURL, namespace string, poolSize int) (*Redis, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return nil, fmt.Errorf("invalid Redis target %q: want redis://host:port", rawURL)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invalid Redis target %q: %w", rawURL, err)
	}
	opts.PoolSize = max(poolSize, 1)
	opts.MinIdleConns = min(opts.PoolSize, 64)
	c := redis.NewClient(opts)
	return &Redis{c: c, prefix: namespace + ":"}, nil
}

// Client returns the underlying go-redis client.
func (r *Redis) Client() *redis.Client { return r.c }

// Get implements Target.
func (r *Redis) Get(ctx context.Context, key string) (bool, error) {
	err := r.c.Get(ctx, r.prefix+key).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// Set implements Target; no expiry.
func (r *Redis) Set(ctx context.Context, key string, value []byte) error {
	return r.c.Set(ctx, r.prefix+key, value, 0).Err()
}

// Close implements Target.
func (r *Redis) Close() error { return r.c.Close() }

// IsRedisURL reports whether target names a Redis server (redis://) or a
// Redis Cluster (redis-cluster://).
func IsRedisURL(target string) bool {
	return strings.HasPrefix(target, "redis://") || strings.HasPrefix(target, "redis-cluster://")
}

// OpenRedis connects to a Redis target through client (ClientRueidis or
// ClientGoRedis) and returns it with a name for reports. poolSize is
// go-redis's pool; rueidis pipelines on its own connections.
func OpenRedis(rawURL, namespace, client string, poolSize int) (Target, string, error) {
	cluster := strings.HasPrefix(rawURL, "redis-cluster://")
	switch {
	case client == ClientRueidis:
		t, err := NewRueidis(rawURL, namespace)
		if cluster {
			return t, "redis-cluster (rueidis)", err
		}
		return t, "redis (rueidis)", err
	case client == ClientGoRedis && cluster:
		t, err := NewRedisCluster(rawURL, namespace, poolSize)
		return t, "redis-cluster (go-redis)", err
	case client == ClientGoRedis:
		t, err := NewRedis(rawURL, namespace, poolSize)
		return t, "redis (go-redis)", err
	}
	return nil, "", fmt.Errorf("unknown Redis client %q: use %s or %s", client, ClientRueidis, ClientGoRedis)
}
