package client

import (
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ringcache/ringcache/internal/invalwatch"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// watchRing keeps a WatchRing stream open to some node and installs every
// snapshot it sends, moving to another node when the stream breaks.
func (c *Client) watchRing() {
	b := &backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: 2 * time.Second}
	for attempt := 0; ; attempt++ {
		addrs := c.opts.Seeds
		if r := c.ring.Load(); r != nil {
			addrs = append(append([]string{}, r.addrs...), c.opts.Seeds...)
		}
		addr := addrs[attempt%len(addrs)]
		if err := c.followRing(addr); c.ctx.Err() != nil {
			return
		} else if err != nil {
			c.log.Debug("ring stream ended; trying another node", "node", addr, "err", err)
		}
		if invalwatch.Sleep(c.ctx, b.NextBackOff()) != nil {
			return
		}
	}
}

func (c *Client) followRing(addr string) error {
	n, err := c.node(addr)
	if err != nil {
		return err
	}
	stream, err := n.cache.WatchRing(c.ctx, &pb.WatchRingRequest{})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return err
		}
		r, err := routesFrom(msg)
		if err != nil {
			return fmt.Errorf("malformed ring from %s: %w", addr, err)
		}
		c.ring.Store(r)
		c.ringUpdates.Add(1)
		c.retain(r.addrs)
		if c.near != nil {
			c.near.ringChanged()
		}
	}
}

// routesFrom reads a ring message. Partitions are slot ranges, so a
// partition count that is no valid partitioning (a node of an older,
// hash-partitioned version) is refused with the rest: it would route keys
// to nodes that do not own them.
func routesFrom(msg *pb.WatchRingResponse) (*routes, error) {
	r := &routes{version: msg.Version, parts: int(msg.PartitionCount), defaultNS: msg.DefaultNamespace, owners: make([]string, len(msg.Owners))}
	for _, nd := range msg.Nodes {
		r.addrs = append(r.addrs, nd.GrpcAddr)
	}
	if err := (ring.Config{PartitionCount: r.parts}).Validate(); err != nil || r.parts == 0 || len(msg.Owners) != r.parts {
		return nil, fmt.Errorf("%d partitions, %d owners", r.parts, len(msg.Owners))
	}
	for p, o := range msg.Owners {
		if int(o) >= len(r.addrs) {
			return nil, fmt.Errorf("owner %d of %d nodes", o, len(r.addrs))
		}
		r.owners[p] = r.addrs[o]
	}
	return r, nil
}

// owner returns the address of the node that owns key in ns.
func (r *routes) owner(ns, key string) string {
	return r.owners[ring.PartitionFor(r.defaultNS, ns, key, r.parts)]
}
