package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ringcache/ringcache/internal/connlimit"
	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Defaults of the node's bounds on connections, calls and streams
// (docs/operations.md, "Connections and streams").
const (
	// DefaultMaxConcurrentStreams: HTTP/2 asks for at least 100, Go's
	// HTTP/2 server uses 250. Each stream a client stops reading may hold
	// up to 64 KiB in gRPC's transport until the connection closes, so
	// this also bounds that per connection (16 MiB).
	DefaultMaxConcurrentStreams = 256
	DefaultMaxCalls             = 16384
	DefaultMaxStreams           = 8192
	// DefaultMaxConnections caps the default connection bound. An idle
	// gRPC connection costs the node about 42 KiB of heap once its
	// handshake is done (2,000 took 83 MiB: gRPC's 32 KiB read buffer,
	// the framer, three goroutines), about 10 KiB before; 4,096 idle
	// clients hold about 170 MiB. The Go client keeps one connection to
	// each node.
	DefaultMaxConnections = 4096
	// DefaultPeerConnections are kept for peers beyond MaxConnections.
	DefaultPeerConnections  = 64
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultKeepaliveTime    = time.Minute
	DefaultKeepaliveTimeout = 20 * time.Second
	// DefaultKeepaliveMinClientInterval is the most often a client may
	// ping.
	DefaultKeepaliveMinClientInterval = 10 * time.Second
	DefaultStreamSendTimeout          = service.DefaultSendTimeout
	DefaultMaxWatchers                = service.DefaultMaxWatchers
	DefaultWatchBacklogBytes          = service.DefaultWatchBacklogBytes
)

func (c Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("node: name is required")
	case c.GRPCAddr == "":
		return errors.New("node: gRPC address is required")
	case c.GossipAddr == "":
		return errors.New("node: gossip address is required")
	case len(c.Namespaces) == 0:
		return errors.New("node: at least one namespace is required")
	case math.IsNaN(c.HotCacheMinRate) || c.HotCacheMinRate < 0:
		return fmt.Errorf("node: hot cache min rate %v is not a non-negative number", c.HotCacheMinRate)
	case c.HotCacheTTL < 0:
		return fmt.Errorf("node: hot cache TTL %v is negative", c.HotCacheTTL)
	case c.MaxBatchKeys > MaxBatchKeysLimit:
		return fmt.Errorf("node: max batch keys %d is more than %d", c.MaxBatchKeys, MaxBatchKeysLimit)
	}
	for _, ns := range c.Namespaces {
		if ns.Policy.Write == strategy.WriteBehind && c.Journal.Path == "" {
			return fmt.Errorf("node: namespace %q is write-behind and needs a journal path", ns.Policy.Name)
		}
	}
	if t := c.TLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		return errors.New("node: TLS needs a certificate and a key file (--tls-cert, --tls-key)")
	}
	if t := c.TLS; t != nil && t.RequireClientCert && t.ClientCAFile == "" {
		return errors.New("node: requiring client certificates needs the CA that signs them (--tls-client-ca)")
	}
	if err := c.checkExposure(); err != nil {
		return err
	}
	return c.Ring.Validate()
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = DefaultMaxMemory
	}
	if c.MaxBatchKeys <= 0 {
		c.MaxBatchKeys = DefaultMaxBatchKeys
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if c.MaxCalls == 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = min(DefaultMaxConnections, DefaultConnections(connlimit.OpenFileLimit()))
	}
	if c.PeerConnections <= 0 {
		c.PeerConnections = DefaultPeerConnections
	}
	if c.MaxWatchers == 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.WatchBacklogBytes <= 0 {
		c.WatchBacklogBytes = DefaultWatchBacklogBytes
	}
	set(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	set(&c.KeepaliveTime, DefaultKeepaliveTime)
	set(&c.KeepaliveTimeout, DefaultKeepaliveTimeout)
	set(&c.KeepaliveMinClientInterval, DefaultKeepaliveMinClientInterval)
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.StreamSendTimeout == 0 {
		c.StreamSendTimeout = DefaultStreamSendTimeout
	}
	set(&c.ForwardTimeout, DefaultForwardTimeout)
	set(&c.LeaveTimeout, DefaultLeaveTimeout)
	set(&c.BootstrapTimeout, DefaultBootstrap)
	set(&c.FlushTimeout, DefaultFlushTimeout)
	set(&c.HandoffWindow, DefaultHandoffWindow)
	set(&c.HotCacheTTL, DefaultHotCacheTTL)
	if c.HotCacheMinRate == 0 {
		c.HotCacheMinRate = DefaultHotCacheMinRate
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	// The slot of a key (its owner) is computed as the RESP door names it,
	// for every door, whether or not this node opens the RESP door.
	if c.Ring.DefaultNamespace == "" {
		c.Ring.DefaultNamespace = c.RESP.DefaultNamespace
	}
	if c.Ring.DefaultNamespace == "" {
		c.Ring.DefaultNamespace = DefaultRESPNamespace
	}
	return c
}
