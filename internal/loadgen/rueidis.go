package loadgen

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"
)

// Redis clients a Redis target can be driven by.
const (
	// ClientRueidis is rueidis: concurrent callers' commands are pipelined
	// on shared connections (auto-pipelining), what a Go team picks for
	// throughput. The default.
	ClientRueidis = "rueidis"
	// ClientGoRedis is go-redis: one pooled connection per caller.
	ClientGoRedis = "go-redis"
)

// Rueidis is a Target on a Redis server, a Redis Cluster or ringcache's
// RESP door through rueidis with auto-pipelining.
type Rueidis struct {
	c      rueidis.Client
	prefix string
}

// NewRueidis connects to rawURL: redis://host:port for one server (every
// command to it), redis-cluster://host:port[,host:port…] for a cluster
// whose slot map rueidis reads (CLUSTER SLOTS) and follows. Keys are
// prefixed with namespace and a colon, as NewRedis does.
func NewRueidis(rawURL, namespace string) (*Rueidis, error) {
	addrs, cluster, err := parseRedisURL(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       addrs,
		ForceSingleClient: !cluster,
		// ringcache has no client-side caching (CLIENT TRACKING); a Redis
		// server is measured the same way.
		DisableCache: true,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", rawURL, err)
	}
	return &Rueidis{c: c, prefix: namespace + ":"}, nil
}

// Get implements Target.
func (r *Rueidis) Get(ctx context.Context, key string) (bool, error) {
	err := r.c.Do(ctx, r.c.B().Get().Key(r.prefix+key).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	return err == nil, err
}

// Set implements Target; no expiry.
func (r *Rueidis) Set(ctx context.Context, key string, value []byte) error {
	return r.c.Do(ctx, r.c.B().Set().Key(r.prefix+key).Value(rueidis.BinaryString(value)).Build()).Error()
}

// Close implements Target.
func (r *Rueidis) Close() error {
	r.c.Close()
	return nil
}

// NewRedisCluster is NewRedis for redis-cluster://host:port[,…]: a go-redis
// ClusterClient that reads the slot map and sends each key to its owner.
func NewRedisCluster(rawURL, namespace string, poolSize int) (*RedisCluster, error) {
	addrs, cluster, err := parseRedisURL(rawURL)
	if err != nil || !cluster {
		return nil, fmt.Errorf("invalid Redis Cluster target %q: want redis-cluster://host:port[,host:port…]", rawURL)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: max(poolSize, 1), MinIdleConns: min(max(poolSize, 1), 64)})
	return &RedisCluster{c: c, prefix: namespace + ":"}, nil
}

// RedisCluster is a Target on a Redis Cluster (or ringcache's RESP door in
// cluster mode) through go-redis's ClusterClient.
type RedisCluster struct {
	c      *redis.ClusterClient
	prefix string
}

// Get implements Target.
func (r *RedisCluster) Get(ctx context.Context, key string) (bool, error) {
	err := r.c.Get(ctx, r.prefix+key).Err()
	if err == redis.Nil {
		return false, nil
	}
	return err == nil, err
}

// Set implements Target; no expiry.
func (r *RedisCluster) Set(ctx context.Context, key string, value []byte) error {
	return r.c.Set(ctx, r.prefix+key, value, 0).Err()
}

// Close implements Target.
func (r *RedisCluster) Close() error { return r.c.Close() }

// parseRedisURL returns the addresses of redis://host:port or
// redis-cluster://host:port[,host:port…], and whether it names a cluster.
func parseRedisURL(rawURL string) (addrs []string, cluster bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "redis" && u.Scheme != "redis-cluster") {
		return nil, false, fmt.Errorf("invalid Redis target %q: want redis://host:port or redis-cluster://host:port[,host:port…]", rawURL)
	}
	for _, a := range strings.Split(u.Host, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs, u.Scheme == "redis-cluster", nil
}
