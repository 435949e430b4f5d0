package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Defaults for Config.
const (
	DefaultMaxMemory      = 256 << 20
	DefaultForwardTimeout = 10 * time.Second
	DefaultMaxBatchKeys   = 1000
	// MaxBatchKeysLimit is the largest MaxBatchKeys, and the most ops a
	// node accepts in one batch forwarded by a peer.
	MaxBatchKeysLimit   = service.MaxForwardedOps
	DefaultLeaveTimeout = 5 * time.Second
	DefaultBootstrap    = 30 * time.Second
	DefaultFlushTimeout = 15 * time.Second
	// DefaultHandoffWindow is how long a node asks a partition's previous
	// owner for pending write-behind writes after taking it over.
	DefaultHandoffWindow = time.Minute
	// DefaultHotCacheMinRate is the Gets per second of one key through a
	// node that does not own it at which the hot cache keeps it.
	DefaultHotCacheMinRate = 100
	// DefaultHotCacheTTL bounds how long a hot-cache entry is served.
	DefaultHotCacheTTL = time.Second
)

// NamespaceSpec is one namespace the node serves.
type NamespaceSpec struct {
	Policy strategy.Policy
	// Loader reads misses of a read-through namespace; nil otherwise.
	Loader strategy.Loader
	// Writer writes the database of a write-through or write-behind
	// namespace; nil otherwise.
	Writer strategy.Writer
	// Audit writes every access to the namespace to the audit log
	// (Config.AuditLog): who, from where, which key (as a keyed hash).
	Audit bool
	// Sensitive seals the namespace's values where they rest on disk (the
	// write-behind journal and its replicas) with AES-256-GCM under
	// Config.SealKeys. Values are never logged in any namespace.
	Sensitive bool
	// Replicas is how many nodes hold a write-behind write, this one
	// included, before it is acknowledged (write_behind.replicas): 0 means
	// 2, or 1 while the cluster has one member; 1 keeps the journal on the
	// owner alone. MinReplicas is the least number of copies a write is
	// acknowledged with when a replica is unreachable
	// (write_behind.min_replicas): 0 means all of them, so such a write
	// fails with UNAVAILABLE; fewer are accepted and counted as
	// under-replicated. docs/architecture.md describes the replication.
	Replicas, MinReplicas int
}

// TLSConfig secures the gRPC port with TLS 1.3: for clients, and for the
// node's own calls to its peers, which present the node certificate. The
// files are re-read when they change, so certificates and CAs rotate with
// no restart and no failed call.
type TLSConfig struct {
	// CertFile and KeyFile are the node's certificate and key (PEM). A
	// node certificate (ringcachectl certs node) carries serverAuth and
	// clientAuth, and names every address peers and clients dial.
	CertFile, KeyFile string
	// ClientCAFile, when set, verifies client certificates, which then
	// identify their callers; peers' certificates must be signed by it
	// too. Empty: clients present none, and peers' certificates are
	// verified against the system roots.
	ClientCAFile string
	// RequireClientCert refuses connections without a client certificate
	// (strict mutual TLS); otherwise a caller without one may still present
	// a bearer token, as Auth decides.
	RequireClientCert bool
}

// AuthConfig says who may do what: principals identified by a client
// certificate (its URI SAN, else its common name) or a bearer token, and
// their grants. See docs/security.md.
type AuthConfig struct {
	// TokensFile lists bearer tokens, a line "principal sha256hex" each;
	// re-read when it changes.
	TokensFile string
	// Principals maps a principal name, or a glob of names
	// ("ringcache-*"), to its grant.
	Principals map[string]Grant
	// Anonymous is what a caller without credentials may do; every
	// principal may do this too.
	Anonymous Grant
}

// Grant is what a principal may do.
type Grant struct {
	// Namespaces maps a namespace (or "*", every namespace) to roles:
	// "read" (Get, GetMany, Lease, WatchInvalidations) and "write" (Set,
	// Delete).
	Namespaces map[string][]string
	// Admin allows the Admin service; Peer the Peer service, only to a
	// caller identified by a node certificate.
	Admin, Peer bool
	// Rate is the principal's operations per second (0: unlimited), Burst
	// how many may go at once above it.
	Rate  float64
	Burst int
}

// AuditConfig writes an audit log: every Admin call, every denied call,
// and every access to namespaces marked Audit, as JSON lines.
type AuditConfig struct {
	// Path of the log file, opened for appending.
	Path string
	// Key is the HMAC key of the keyed hashes that stand for keys (at
	// least 16 bytes); give every node the same key so hashes correlate.
	Key []byte
}

// JournalConfig configures the durable write-behind journal, which a node
// opens when a namespace is write-behind, flushes to the namespaces'
// Writers, and closes on Close. Zero fields take their defaults.
type JournalConfig struct {
	// Path of the journal file (bbolt); required with a write-behind
	// namespace.
	Path string
	// MaxPending bounds the pending writes (distinct keys), MaxBytes their
	// key and value bytes; past either, a Set gets RESOURCE_EXHAUSTED.
	// Defaults 1,000,000 and 1 GiB.
	MaxPending int
	MaxBytes   int64
	// FlushInterval between flushes while less than a batch is pending
	// (default 1 s); BatchSize is the most writes per database batch
	// (default 500).
	FlushInterval time.Duration
	BatchSize     int
	// MaxAttempts is how often a write the database rejects is tried
	// before it becomes a dead letter (default 3).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait after a failed flush
	// (defaults 100 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
}

// Clock is a node's time source for TTLs, expiry and windows
// (internal/testclock is a fake one). NowNano and Tick are those of otter's
// Clock, which the store uses.
type Clock interface {
	Now() time.Time
	NowNano() int64
	Tick(d time.Duration) <-chan time.Time
}

// Config configures a Node. Required: Name, GRPCAddr, GossipAddr and at least
// one namespace. Every node of a cluster must have the same namespaces and
// Ring config.
type Config struct {
	Name string
	// GRPCAddr is the gRPC listen address (host:port; port 0 picks one).
	GRPCAddr string
	// AdvertiseGRPCAddr is the address peers dial; empty means the
	// listener's address.
	AdvertiseGRPCAddr string
	// GossipAddr is the memberlist bind address (TCP and UDP).
	GossipAddr string
	// AdvertiseGossipAddr is the gossip address peers use; empty means GossipAddr.
	AdvertiseGossipAddr string
	// Join lists seed gossip addresses or DNS names that resolve to peers;
	// they may name this node itself and peers that are not up yet.
	Join []string
	// GossipPreset is "lan" (default) or "local": failure-detection timers.
	GossipPreset string
	// GossipKeys, when set (each 16, 24 or 32 bytes), encrypt and
	// authenticate gossip with the first key; the others are accepted too,
	// so keys can be rotated without losing a member (RotateGossipKeys).
	GossipKeys [][]byte
	// GossipKeyFile is the file GossipKeys were read from; when set, the
	// node rewrites it (atomically) after an Admin call changes the keyring
	// (ringcachectl gossip-keys), so a restart starts from the keys in use.
	GossipKeyFile string
	Ring          ring.Config
	// MaxMemory bounds the local store in bytes; default 256 MiB.
	MaxMemory  uint64
	Namespaces []NamespaceSpec
	// Journal is the write-behind journal; see JournalConfig.
	Journal JournalConfig
	// ClockPath is the file that persists the version clock's high-water
	// mark (internal/hlc Mark), so that versions stamped after a restart
	// exceed those stamped before it, even when the wall clock stepped
	// back. Empty means none: a write that then loses to an earlier,
	// higher version is detected by the database and retried past it.
	ClockPath string
	// ForwardTimeout bounds an op that waits (a load, a forward, a
	// database write) when its caller set no deadline, and caps the
	// timeouts Pipeline callers set.
	ForwardTimeout time.Duration
	// MaxBatchKeys bounds the keys of one GetMany and the ops of one
	// Pipeline frame or RESP batch; default 1000, at most MaxBatchKeysLimit.
	// The Go client sends at most 512 ops per frame, so keep it at 512 or
	// more. Nodes may differ: a node accepts its peers' forwarded batches
	// up to MaxBatchKeysLimit, whatever its own bound.
	MaxBatchKeys int
	// LeaveTimeout bounds the wait for the leave message to spread on Close.
	LeaveTimeout time.Duration
	// BootstrapTimeout is how long a node with seeds waits to join one
	// before it decides what to do alone; default 30 s. Until it has
	// joined, calls get UNAVAILABLE and health reports NOT_SERVING, so a
	// node never acknowledges writes that vanish when it meets its cluster.
	BootstrapTimeout time.Duration
	// BootstrapAlone lets a node whose seeds have not answered within
	// BootstrapTimeout serve as a cluster of one (the first node of a new
	// cluster, or a cluster of one node). Without it such a node stays
	// NOT_SERVING until a seed answers. A node that seeds answered and
	// refused (another gossip key, encryption on one side only) never
	// serves alone: that cluster exists and has other data.
	BootstrapAlone bool
	// FlushTimeout bounds the journal flush of a graceful Close; default 15 s.
	FlushTimeout time.Duration
	// HotCacheBytes bounds the hot cache: the owners' answers for keys this
	// node does not own but is asked for at HotCacheMinRate or more, served
	// here without a forward and invalidated by the owners. Bytes count
	// keys, values and a per-entry overhead; 0 (the default) disables it.
	HotCacheBytes uint64
	// HotCacheMinRate is the Gets per second of one key through this node
	// at which it is cached here; default DefaultHotCacheMinRate. Rates
	// below 2 act as 2.
	HotCacheMinRate float64
	// HotCacheTTL bounds how long a hot entry is served, the safety net
	// should an invalidation stream stall without breaking; default
	// DefaultHotCacheTTL.
	HotCacheTTL time.Duration
	// HandoffWindow is how long, after taking a partition over, the node
	// asks its previous owner for pending write-behind writes before
	// reading the database; default DefaultHandoffWindow.
	HandoffWindow time.Duration
	// WarmHandover tunes the hand-over of cached entries to the new owners
	// of moved partitions (warm.go); on by default.
	WarmHandover WarmHandoverConfig
	// ReplicationTimeout bounds the wait for a replica's acknowledgement of
	// a write-behind write; a replica that does not answer within it counts
	// as unreachable. Default 2 s.
	ReplicationTimeout time.Duration
	// MaxConcurrentStreams bounds the concurrent RPCs and streams of one
	// client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; a client
	// over it waits for one of its calls to end); default
	// DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxConnections bounds the open client connections; a connection
	// over it is accepted and closed at once, so its client fails fast
	// (UNAVAILABLE) and can try another node, and the node reports not
	// ready while it is at the bound. 0 means the default: what the
	// open-file limit leaves (DefaultConnections), at most
	// DefaultMaxConnections; negative means no bound.
	MaxConnections int
	// PeerConnections are connections beyond MaxConnections that only
	// peers may use: connections from the host of a cluster member (its
	// gRPC or gossip address), so peers get through however many clients
	// crowd the node. Default DefaultPeerConnections.
	PeerConnections int
	// HandshakeTimeout bounds a new connection's TLS and HTTP/2
	// handshake: a connection that says nothing is closed after it.
	// Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection with no call or stream open for
	// that long (HTTP/2 GOAWAY; clients reconnect when they next call).
	// Default DefaultIdleTimeout; negative means never.
	IdleTimeout time.Duration
	// KeepaliveTime is how long a connection may be quiet before the node
	// pings it, KeepaliveTimeout how long the node waits for the answer
	// before closing it, so connections of clients that vanished or
	// froze are closed. Clients may ping the node at most once every
	// KeepaliveMinClientInterval (more often, and the node closes the
	// connection with GOAWAY "too_many_pings"), with or without calls
	// open. Defaults DefaultKeepaliveTime, DefaultKeepaliveTimeout and
	// DefaultKeepaliveMinClientInterval.
	KeepaliveTime, KeepaliveTimeout, KeepaliveMinClientInterval time.Duration
	// MaxConnectionAge, when positive, closes every connection after that
	// long (GOAWAY, then MaxConnectionAge/10 for calls in flight), which
	// also frees what clients that stopped reading left queued; default
	// 0: connections live as long as they are used.
	MaxConnectionAge time.Duration
	// StreamSendTimeout ends a stream (Pipeline, WatchRing,
	// WatchInvalidations) with RESOURCE_EXHAUSTED when a send to it has
	// waited that long for its client to read; default
	// DefaultStreamSendTimeout, negative means never.
	StreamSendTimeout time.Duration
	// MaxWatchers bounds the WatchInvalidations subscribers other than
	// peers; over it a subscription gets RESOURCE_EXHAUSTED with a retry
	// delay. Default DefaultMaxWatchers; negative means no bound.
	MaxWatchers int
	// WatchBacklogBytes bounds the changes kept for subscribers that have
	// not sent them yet, all subscribers together; a subscriber further
	// behind than that is dropped (its stream ends with
	// RESOURCE_EXHAUSTED). Default DefaultWatchBacklogBytes.
	WatchBacklogBytes int64
	// MaxCalls bounds the unary calls in progress on the node, MaxStreams
	// its open streams (Pipeline, watches); past either a call gets
	// RESOURCE_EXHAUSTED with a retry delay. Defaults DefaultMaxCalls and
	// DefaultMaxStreams; negative means no bound.
	MaxCalls, MaxStreams int64

	// RESP opens the Redis protocol door; see RESPConfig.
	RESP RESPConfig

	// TLS, when set, secures the gRPC port; see TLSConfig.
	TLS *TLSConfig
	// Insecure allows plaintext gRPC (no TLS) on an address other than
	// loopback, and gossip without a key there; without it New refuses to
	// start so, since anyone on the network could then read and write
	// every namespace.
	Insecure bool
	// Auth, when set, authenticates and authorizes every call; nil lets
	// every caller do everything (fit for loopback only).
	Auth *AuthConfig
	// Audit, when set, writes the audit log.
	Audit *AuditConfig
	// SealKeys (32 bytes each; the first seals, all open) seal the
	// journal's values of Sensitive namespaces; rotate them with
	// ReloadSealKeys.
	SealKeys [][]byte
	// Logger receives operator messages; nil discards them. Keys and values
	// are never logged.
	Logger *slog.Logger
	// Clock is the node's time source; nil means the wall clock.
	Clock Clock
	// MeterProvider receives the node's instruments (metrics.go) and the
	// gRPC latency histograms; nil means no metrics.
	MeterProvider metric.MeterProvider
	// TracerProvider traces gRPC calls, forwards and backend work; nil
	// means no tracing. Spans never carry keys or values.
	TracerProvider trace.TracerProvider
	// Propagator carries trace context over gRPC; nil means W3C
	// trace-context.
	Propagator propagation.TextMapPropagator

	// Test seams: a gossip transport, gossip timer tuning, and a dialer for
	// peer connections.
	GossipTransport memberlist.Transport
	TuneGossip      func(*memberlist.Config)
	PeerDialer      func(ctx context.Context, addr string) (net.Conn, error)
	// Prewarm keeps the hot-key list and warms it after a restart
	// (prewarm.go); the zero value keeps no list.
	Prewarm PrewarmConfig
}

// MemberState is a member's state as a node sees it.
type MemberState string

// Member states.
const (
	MemberAlive MemberState = "alive"
	MemberDead  MemberState = "dead"
	MemberLeft  MemberState = "left"
)

// Member is one node of the cluster as a node sees it.
type Member struct {
	Name       string
	GossipAddr string
	GRPCAddr   string
	State      MemberState
	// TableVersion is the partition table the member last said it routes
	// by (in its gossip metadata).
	TableVersion uint64
}

// checkExposure refuses, unless Insecure, to serve plaintext gRPC or
// unencrypted gossip on an address other than loopback.
func (c Config) checkExposure() error {
	if c.Insecure {
		return nil
	}
	if c.TLS == nil && !loopback(c.GRPCAddr) {
		return fmt.Errorf("node: refusing to serve plaintext gRPC on %s, which is not a loopback address: anyone who reaches it could read and write every namespace. "+
			"Give the node a certificate (--tls-cert, --tls-key; ringcachectl certs makes them), or pass --insecure to accept the risk (a trusted network only)", c.GRPCAddr)
	}
	if len(c.GossipKeys) == 0 && !loopback(c.GossipAddr) {
		return fmt.Errorf("node: refusing to gossip unencrypted on %s, which is not a loopback address: anyone who reaches it could join the cluster. "+
			"Give the node a gossip key (--gossip-key-file), or pass --insecure to accept the risk (a trusted network only)", c.GossipAddr)
	}
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only: an
// empty host or 0.0.0.0 listens everywhere.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
