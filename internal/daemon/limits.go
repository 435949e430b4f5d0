package daemon

import (
	"fmt"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/ringcache/ringcache/pkg/node"
)

// LimitFlags are ringcached's bounds on connections, calls and streams
// (docs/operations.md, "Connections and streams"). Zero values (Flags built
// in code) mean node's defaults.
type LimitFlags struct {
	MaxConnections    int
	MaxCalls          int64
	MaxStreams        int64
	IdleTimeout       time.Duration
	MaxConnectionAge  time.Duration
	StreamSendTimeout time.Duration
	MaxWatchers       int
	MaxBatchKeys      int
	// WatchBacklog is a size ("64MiB"); empty means the default.
	WatchBacklog string
}

func (l *LimitFlags) register(fl *pflag.FlagSet) {
	fl.IntVar(&l.MaxConnections, "max-connections", 0, fmt.Sprintf("client connections the node keeps open at most; one over it is closed at once and the node reports not ready while at the bound (0: what the open-file limit leaves, at most %d; -1: no bound). Peers get %d more", node.DefaultMaxConnections, node.DefaultPeerConnections))
	fl.Int64Var(&l.MaxCalls, "max-calls", node.DefaultMaxCalls, "unary calls in progress at most; past it a call gets RESOURCE_EXHAUSTED with a retry delay (-1: no bound)")
	fl.Int64Var(&l.MaxStreams, "max-streams", node.DefaultMaxStreams, "open streams (Pipeline, watches) at most; past it a stream gets RESOURCE_EXHAUSTED with a retry delay (-1: no bound)")
	fl.DurationVar(&l.IdleTimeout, "idle-timeout", node.DefaultIdleTimeout, "close a connection with no call or stream open for this long (clients reconnect when they next call; -1s: never)")
	fl.DurationVar(&l.MaxConnectionAge, "max-connection-age", 0, "close every connection after this long (GOAWAY, then a tenth of it for calls in flight), spreading clients over new nodes; 0: never")
	fl.DurationVar(&l.StreamSendTimeout, "stream-send-timeout", node.DefaultStreamSendTimeout, "end a stream with RESOURCE_EXHAUSTED when a send to it waited this long for its client to read (-1s: never)")
	fl.IntVar(&l.MaxBatchKeys, "max-batch-keys", node.DefaultMaxBatchKeys, "keys of one GetMany, ops of one Pipeline frame and of one RESP batch at most (the Go client sends up to 512 per frame: keep it at 512 or more; at most 65536). Nodes may differ: a peer's forwarded batches are accepted up to 65536")
	fl.IntVar(&l.MaxWatchers, "max-watchers", node.DefaultMaxWatchers, "WatchInvalidations subscribers other than peers at most (-1: no bound)")
	fl.StringVar(&l.WatchBacklog, "watch-backlog", humanize.IBytes(uint64(node.DefaultWatchBacklogBytes)), "changes kept for invalidation subscribers that have not sent them yet, all together; a subscriber further behind is dropped")
}

// apply sets the node's bounds from the flags.
func (l LimitFlags) apply(cfg *node.Config) error {
	cfg.MaxConnections = l.MaxConnections
	cfg.MaxCalls, cfg.MaxStreams = l.MaxCalls, l.MaxStreams
	cfg.IdleTimeout, cfg.MaxConnectionAge = l.IdleTimeout, l.MaxConnectionAge
	cfg.StreamSendTimeout = l.StreamSendTimeout
	cfg.MaxWatchers = l.MaxWatchers
	cfg.MaxBatchKeys = l.MaxBatchKeys
	if l.MaxBatchKeys < 0 || l.MaxBatchKeys > node.MaxBatchKeysLimit {
		return fmt.Errorf("--max-batch-keys %d is not between 0 (the default, %d) and %d", l.MaxBatchKeys, node.DefaultMaxBatchKeys, node.MaxBatchKeysLimit)
	}
	if l.MaxConnectionAge < 0 {
		return fmt.Errorf("--max-connection-age %s is negative (0 keeps connections as long as they are used)", l.MaxConnectionAge)
	}
	if l.WatchBacklog != "" {
		b, err := humanize.ParseBytes(l.WatchBacklog)
		if err != nil || b == 0 || b > 1<<40 {
			return fmt.Errorf("--watch-backlog %q is not a positive size (use e.g. 64MiB)", l.WatchBacklog)
		}
		cfg.WatchBacklogBytes = int64(b)
	}
	return nil
}
