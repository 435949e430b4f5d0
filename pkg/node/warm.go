package node

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/membership"
)

// Warm hand-over, the node's part: its configuration, its instruments,
// and the wait of a graceful leave for the new owners' pulls.

// DefaultWarmHandoverTimeout bounds how long a leaving node waits for the
// members that take its partitions to pull its cached entries.
const DefaultWarmHandoverTimeout = 10 * time.Second

// WarmHandoverConfig tunes the warm hand-over: when a partition changes
// owner (a join, a graceful leave, a rebalance), its new owner pulls the
// entries its previous owner had cached instead of loading them from the
// database (engine.WarmConfig). Zero fields take their defaults.
type WarmHandoverConfig struct {
	// Disabled turns it off: moved partitions start cold.
	Disabled bool
	// MaxBytes bounds the entries a node holds for new owners; default
	// engine.DefaultWarmMaxBytes (256 MiB).
	MaxBytes int64
	// Rate bounds the bytes per second a node streams to new owners;
	// default engine.DefaultWarmRate (64 MiB/s).
	Rate int64
	// Timeout bounds a graceful leave's wait for the pulls; default
	// DefaultWarmHandoverTimeout. Close's context bounds it too.
	Timeout time.Duration
}

func (n *Node) warmConfig() engine.WarmConfig {
	c := n.cfg.WarmHandover
	return engine.WarmConfig{Off: c.Disabled, MaxBytes: c.MaxBytes, Rate: c.Rate, Window: n.cfg.HandoffWindow, Failed: n.memberFailed}
}

// memberFailed reports whether gossip declared the member dead (not gone
// gracefully): its cached entries are not pulled.
func (n *Node) memberFailed(name string) bool {
	if n.members == nil {
		return false
	}
	for _, m := range n.members.Members() {
		if m.Name == name {
			return m.State == membership.StateDead
		}
	}
	return true // forgotten: long gone
}

// awaitWarmPulls waits, on a graceful leave, until the new owners of this
// node's partitions have pulled its entries, or the timeout passes.
func (n *Node) awaitWarmPulls(ctx context.Context) {
	if n.cfg.WarmHandover.Disabled {
		return
	}
	timeout := n.cfg.WarmHandover.Timeout
	if timeout <= 0 {
		timeout = DefaultWarmHandoverTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	left := n.engine.AwaitTransfers(wctx, n.members.PeersStay)
	switch {
	case left == 0:
		n.log.Info("new owners pulled this node's cached entries", "took", time.Since(start))
	case !n.members.PeersStay():
		// The whole cluster is stopping, or this node was the last.
		n.log.Info("no peer stays to pull this node's cached entries", "partitions", left)
	default:
		n.log.Warn("leaving before every new owner pulled its cached entries; those partitions start cold", "partitions_left", left, "waited", time.Since(start))
	}
}
