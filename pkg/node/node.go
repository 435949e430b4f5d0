// Package node is the ringcache server: it serves the Cache, Admin and Peer
// gRPC services, keeps the hash ring in step with gossip membership, and
// routes every key to its owner.
//
// Guarantees:
//   - Any node serves any key. A node that does not own a key forwards the
//     call to the owner with the caller's deadline; a forwarded call is
//     always served by its receiver, even if its ring disagrees, so calls
//     never bounce between nodes and cannot deadlock.
//   - Only the owner loads a key from the backend, once at a time, however
//     many callers on however many nodes wait for it.
//   - When the owner cannot be reached the call fails with UNAVAILABLE; the
//     node never loads locally in its place.
//   - With the hot cache on (Config.HotCacheBytes), a node answers the keys
//     it does not own but is asked for often from the owner's earlier
//     answer. The owner invalidates it over a stream; a Get through another
//     node than the one that took a write may return the previous value
//     until then, at most Config.HotCacheTTL (hotcache.go).
package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// transportWindow is the HTTP/2 flow-control window of every stream and
// connection, both ways.
const transportWindow = 1 << 20

// Defaults for Config.
const (
	DefaultMaxMemory      = 256 << 20
	DefaultForwardTimeout = 10 * time.Second
	DefaultMaxBatchKeys   = 1000
	DefaultLeaveTimeout   = 5 * time.Second
	DefaultBootstrap      = 30 * time.Second
	DefaultFlushTimeout   = 15 * time.Second
)

// NamespaceSpec is one namespace the node serves.
type NamespaceSpec struct {
	Policy strategy.Policy
	// Loader reads misses of a read-through namespace; nil otherwise.
	Loader strategy.Loader
	// Writer writes the database of a write-through or write-behind
	// namespace; nil otherwise.
	Writer strategy.Writer
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
	// Join lists seed gossip addresses or DNS names; see membership.Config.
	Join []string
	// GossipPreset is membership.PresetLAN (default) or PresetLocal.
	GossipPreset string
	// GossipKey, when set (16, 24 or 32 bytes), encrypts and authenticates
	// gossip; every node of the cluster needs the same key.
	GossipKey []byte
	Ring      ring.Config
	// MaxMemory bounds the local store in bytes; default 256 MiB.
	MaxMemory  uint64
	Namespaces []NamespaceSpec
	// ForwardTimeout bounds a forwarded call whose caller set no deadline.
	ForwardTimeout time.Duration
	// MaxBatchKeys bounds the keys of one GetMany and the ops of one Pipeline
	// frame; default 1000. The Go client sends at most 512 ops per frame, so
	// keep it at 512 or more.
	MaxBatchKeys int
	// LeaveTimeout bounds the wait for the leave message to spread on Close.
	LeaveTimeout time.Duration
	// BootstrapTimeout is how long a node with seeds waits to join one
	// before it serves alone (a cluster of one); default 30 s. Until it has
	// joined, calls get UNAVAILABLE and health reports NOT_SERVING, so a
	// node never acknowledges writes that vanish when it meets its cluster.
	BootstrapTimeout time.Duration
	// Journal is the node's durable write-behind journal, required when a
	// namespace is write-behind. The node flushes it; the caller opens and
	// closes it (after Close).
	Journal *journal.Journal
	// Flush tunes the flusher (Interval, BatchSize, MaxAttempts, backoff);
	// its Journal and Writers are filled in by the node.
	Flush strategy.FlusherConfig
	// FlushTimeout bounds the journal flush of a graceful Close; default 15 s.
	FlushTimeout time.Duration
	// HotCacheBytes bounds the hot cache: the owners' answers for keys this
	// node does not own but is asked for at HotCacheMinRate or more, served
	// here without a forward and invalidated by the owners (hotcache.go).
	// Bytes count keys, values and store.EntryOverhead per entry; 0 (the
	// default) disables the hot cache.
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
	// Logger receives operator messages; nil discards them. Values are never logged.
	Logger *slog.Logger
	// Clock is the store's time source; nil means the wall clock.
	Clock store.Clock
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
}

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
	}
	return c.Ring.Validate()
}

// Node is a running ringcache server.
type Node struct {
	cfg        Config
	log        *slog.Logger
	store      *store.Store
	namespaces map[string]*strategy.Namespace
	nsNames    []string
	ring       atomic.Pointer[ring.Ring]
	frozen     atomic.Bool // tests pin a ring to make nodes disagree
	ready      atomic.Bool // joined (or bootstrapped alone) and ring built
	members    *membership.Membership
	peers      *peerPool
	fwd        Forwarder
	lis        net.Listener
	grpcAddr   string
	server     *grpc.Server
	health     *health.Server
	stats      nodeStats
	clock      *hlc.Clock
	flusher    *strategy.Flusher // nil without write-behind namespaces
	handoff    atomic.Pointer[handoffs]
	ringNotes  ringNotifier // wakes WatchRing streams
	invals     invalidationHub
	hot        *hotCache // nil when disabled
	obs        observability
	stopFlush  context.CancelFunc
	closing    atomic.Bool
	stop       chan struct{}
	wg         sync.WaitGroup
	closeOnce  sync.Once
}

type nodeStats struct {
	forwards, forwardErrors, forwardedIn atomic.Uint64
	// Pipeline: frames read, ops read, and ops that had to wait (a load, a
	// forward, a database or journal write) rather than being answered
	// from memory in the response to their frame.
	pipelineFrames, pipelineOps, pipelineWaits atomic.Uint64
}

// New starts a node: it listens for gRPC, starts gossip, joins the seeds in
// the background and serves. The node reports NOT_SERVING on the gRPC health
// service until its ring is built.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxMemory == 0 {
		cfg.MaxMemory = DefaultMaxMemory
	}
	if cfg.ForwardTimeout <= 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	if cfg.MaxBatchKeys <= 0 {
		cfg.MaxBatchKeys = DefaultMaxBatchKeys
	}
	if cfg.LeaveTimeout <= 0 {
		cfg.LeaveTimeout = DefaultLeaveTimeout
	}
	if cfg.BootstrapTimeout <= 0 {
		cfg.BootstrapTimeout = DefaultBootstrap
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = DefaultFlushTimeout
	}
	if cfg.HandoffWindow <= 0 {
		cfg.HandoffWindow = DefaultHandoffWindow
	}
	if cfg.HotCacheMinRate == 0 {
		cfg.HotCacheMinRate = DefaultHotCacheMinRate
	}
	if cfg.HotCacheTTL == 0 {
		cfg.HotCacheTTL = DefaultHotCacheTTL
	}
	n := &Node{cfg: cfg, log: cfg.Logger, namespaces: map[string]*strategy.Namespace{}, stop: make(chan struct{})}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.store, err = store.New(store.Config{MaxBytes: cfg.MaxMemory, Clock: cfg.Clock}); err != nil {
		return nil, err
	}
	n.clock = &hlc.Clock{}
	if cfg.Journal != nil {
		// Versions after a restart must exceed those already in the journal,
		// even if the wall clock went backwards meanwhile.
		v, err := cfg.Journal.MaxVersion()
		if err != nil {
			n.store.Close()
			return nil, fmt.Errorf("node: read the journal's versions: %w", err)
		}
		n.clock.Observe(v)
	}
	n.obs.tracer = cfg.tracerProvider().Tracer(tracerName)
	writers := map[string]strategy.Writer{}
	maxValue := 0
	for _, spec := range cfg.Namespaces {
		if _, dup := n.namespaces[spec.Policy.Name]; dup {
			n.store.Close()
			return nil, fmt.Errorf("node: namespace %q defined twice", spec.Policy.Name)
		}
		deps := strategy.Deps{Store: n.store, Loader: spec.Loader, Writer: spec.Writer, Clock: n.clock, Tracer: n.obs.tracer, OnChange: n.invals.publish}
		if spec.Policy.Write == strategy.WriteBehind {
			if cfg.Journal == nil || spec.Writer == nil {
				n.store.Close()
				return nil, fmt.Errorf("node: namespace %q is write-behind and needs a journal and a writer", spec.Policy.Name)
			}
			deps.Journal, deps.Handoff = cfg.Journal, n.lookupPrevious
			writers[spec.Policy.Name] = spec.Writer
		}
		ns, err := strategy.New(spec.Policy, deps)
		if err != nil {
			n.store.Close()
			return nil, err
		}
		n.namespaces[spec.Policy.Name] = ns
		n.nsNames = append(n.nsNames, spec.Policy.Name)
		maxValue = max(maxValue, spec.Policy.MaxValueBytes)
	}
	if cfg.Journal != nil {
		fc := cfg.Flush
		fc.Journal, fc.Writers = cfg.Journal, writers
		if fc.Logger == nil {
			fc.Logger = n.log
		}
		n.flusher = strategy.NewFlusher(fc)
	}
	n.peers = newPeerPool(cfg.PeerDialer, cfg.ForwardTimeout, cfg.peerDialOptions()...)
	n.fwd = n.peers
	if cfg.HotCacheBytes > 0 {
		n.hot = newHotCache(cfg.HotCacheBytes, cfg.HotCacheMinRate, cfg.HotCacheTTL, cfg.Clock, n.watchPeer, n.log)
	}

	if n.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		n.store.Close()
		return nil, fmt.Errorf("node: listen for gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	if n.grpcAddr, err = advertiseAddr(cfg.AdvertiseGRPCAddr, cfg.AdvertiseGossipAddr, n.lis.Addr().(*net.TCPAddr)); err != nil {
		n.lis.Close()
		n.store.Close()
		return nil, err
	}
	n.server = grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(max(4<<20, maxValue+64<<10)),
		grpc.WaitForHandlers(true), // Stop returns only once no handler can touch the store
		// Fixed HTTP/2 windows: with a window set, grpc-go stops its BDP
		// probing, whose pings and window updates cost every busy
		// connection CPU; 1 MiB per stream covers a loopback or LAN hop.
		grpc.InitialWindowSize(transportWindow),
		grpc.InitialConnWindowSize(transportWindow),

		grpc.ChainUnaryInterceptor(recoverUnary(n.log)),
	}, n.serverOptions()...)...)
	n.health = health.NewServer()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.health.SetServingStatus(pb.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(n.server, n.health)
	pb.RegisterCacheServer(n.server, &cacheServer{n: n})
	pb.RegisterPeerServer(n.server, &peerServer{n: n})
	pb.RegisterAdminServer(n.server, &adminServer{n: n})
	reflection.Register(n.server)

	n.members, err = membership.New(membership.Config{
		Name:          cfg.Name,
		BindAddr:      cfg.GossipAddr,
		AdvertiseAddr: cfg.AdvertiseGossipAddr,
		GRPCAddr:      n.grpcAddr,
		Join:          cfg.Join,
		Preset:        cfg.GossipPreset,
		SecretKey:     cfg.GossipKey,
		Transport:     cfg.GossipTransport,
		Tune:          cfg.TuneGossip,
		Logger:        n.log,
		// Probe acks carry the hybrid logical clock, so versions of nodes
		// that exchange no calls stay ordered within a probe interval.
		AckPayload: func() []byte { return binary.BigEndian.AppendUint64(nil, n.clock.Now()) },
		PeerPayload: func(b []byte) {
			if len(b) == 8 {
				n.clock.Observe(binary.BigEndian.Uint64(b))
			}
		},
	})
	if err != nil {
		n.lis.Close()
		n.store.Close()
		return nil, err
	}
	if cfg.MeterProvider != nil {
		if n.obs.reg, err = n.registerMetrics(cfg.MeterProvider); err != nil {
			_ = n.members.Shutdown()
			n.lis.Close()
			n.store.Close()
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
	}
	select {
	case <-n.members.Joined(): // no seeds: ready at once
		n.ready.Store(true)
	default:
	}
	n.rebuildRing() // a ring of at least this node
	if n.flusher != nil {
		// Replays whatever a previous run left in the journal.
		var fctx context.Context
		fctx, n.stopFlush = context.WithCancel(context.Background())
		n.wg.Go(func() { n.flusher.Run(fctx) })
	}
	if n.hot != nil {
		n.wg.Go(func() { n.hot.run(n.stop) })
	}
	n.wg.Add(3)
	go n.ringLoop()
	go n.awaitJoin()
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(n.lis); err != nil {
			n.log.Error("gRPC server stopped", "err", err)
		}
	}()
	n.log.Info("node started", "name", cfg.Name, "grpc", n.grpcAddr, "gossip", n.members.LocalAddr())
	return n, nil
}

// advertiseAddr returns the gRPC address to publish to peers: the explicit
// one, else the listener's, with an unspecified host (0.0.0.0, ::) replaced
// by the host of the advertised gossip address if there is one, else by this
// machine's private IP, as memberlist does for gossip.
func advertiseAddr(explicit, gossip string, lis *net.TCPAddr) (string, error) {
	if explicit != "" {
		if _, _, err := net.SplitHostPort(explicit); err != nil {
			return "", fmt.Errorf("node: advertise gRPC address %q: %w", explicit, err)
		}
		return explicit, nil
	}
	if !lis.IP.IsUnspecified() {
		return lis.String(), nil
	}
	if host, _, err := net.SplitHostPort(gossip); err == nil && host != "" {
		return net.JoinHostPort(host, strconv.Itoa(lis.Port)), nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil || ip == "" {
		return "", fmt.Errorf("node: gRPC listens on %s and no private IP was found to publish; set the advertise gRPC address", lis)
	}
	return net.JoinHostPort(ip, strconv.Itoa(lis.Port)), nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// GRPCAddr returns the address peers and clients dial.
func (n *Node) GRPCAddr() string { return n.grpcAddr }

// GossipAddr returns the gossip address the node advertises.
func (n *Node) GossipAddr() string { return n.members.LocalAddr() }

// Ring returns the current ring snapshot.
func (n *Node) Ring() *ring.Ring { return n.ring.Load() }

// Members returns the cluster as this node sees it.
func (n *Node) Members() []membership.Member { return n.members.Members() }

// awaitJoin marks the node ready once it has joined its cluster, or once
// BootstrapTimeout passes without any peer (it then serves alone and keeps
// trying to join in the background).
func (n *Node) awaitJoin() {
	defer n.wg.Done()
	t := time.NewTimer(n.cfg.BootstrapTimeout)
	defer t.Stop()
	select {
	case <-n.members.Joined():
	case <-t.C:
		n.log.Warn("no peer joined within the bootstrap timeout; serving as a cluster of one", "timeout", n.cfg.BootstrapTimeout)
	case <-n.stop:
		return
	}
	n.ready.Store(true)
	n.setServing()
}

// Ready reports what the gRPC health service reports: true once the node
// has joined its cluster (or bootstrapped alone) and built its ring, false
// again from the start of Close.
func (n *Node) Ready() bool {
	return !n.closing.Load() && n.ready.Load() && n.ring.Load() != nil
}

func (n *Node) setServing() {
	if !n.Ready() {
		return
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.health.SetServingStatus(pb.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// ringLoop is the single consumer of membership changes.
func (n *Node) ringLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-n.members.Changed():
			n.rebuildRing()
		}
	}
}

func (n *Node) rebuildRing() {
	if n.frozen.Load() {
		return
	}
	var ms []ring.Member
	for _, m := range n.members.Alive() {
		if m.GRPCAddr != "" {
			ms = append(ms, ring.Member{Name: m.Name, Addr: m.GRPCAddr})
		}
	}
	var version uint64 = 1
	old := n.ring.Load()
	if old != nil {
		version = old.Version() + 1
	}
	r, err := ring.New(n.cfg.Ring, ms, version)
	if err != nil {
		if n.closing.Load() {
			return // everyone, this node included, is leaving
		}
		n.log.Error("cannot rebuild ring; keeping the previous one", "members", len(ms), "err", err)
		return
	}
	moved := 0
	if old != nil {
		moved = len(ring.Diff(old, r))
	}
	if moved > 0 {
		// Before the new ring is visible: the previous owners to ask, and no
		// entry of a partition changing hands.
		n.recordHandoffs(old, r, time.Now())
		n.dropUnowned(old, r)
	}
	n.ring.Store(r)
	n.ringNotes.notify()
	if n.hot != nil {
		n.hot.ringChanged(r, moved > 0)
	}
	if moved > 0 {
		// Loads that started under the old ring must not cache, and entries
		// cached in the meantime (a forwarded call) go too.
		for _, ns := range n.namespaces {
			ns.ForgetLoads()
		}
		n.dropUnowned(old, r)
	}
	if old != nil {
		n.log.Info("ring rebuilt", "version", version, "members", len(ms), "moved_partitions", moved)
	}
	n.peers.retain(r.Members())
	n.setServing()
}

// dropUnowned removes cached entries of partitions this node does not own in
// r, or did not own in old. An entry of a partition that moved away and
// comes back later would otherwise be served although the key was written
// on another owner meanwhile.
func (n *Node) dropUnowned(old, r *ring.Ring) {
	self := n.cfg.Name
	dropped := n.store.DeleteFunc(func(skey string) bool {
		p := r.PartitionOf(skey) // store keys are routing keys
		return r.PartitionOwner(p).Name != self || old.PartitionOwner(p).Name != self
	})
	if dropped > 0 {
		n.log.Info("dropped entries of partitions that changed owner", "entries", dropped)
	}
}

// Close leaves the cluster gracefully: it reports NOT_SERVING, tells peers it
// is leaving (so they take over its keys at once), finishes in-flight calls
// until ctx ends, and releases everything.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		n.ringNotes.notify() // end WatchRing streams: clients move on
		n.health.Shutdown()
		// Write-behind: flush, then step out of the peers' rings and flush
		// what arrived meanwhile, so the database is current before the
		// keys move. Whatever a deadline leaves pending stays in the
		// journal and is flushed when the node starts again.
		fctx, cancel := context.WithTimeout(ctx, n.cfg.FlushTimeout)
		defer cancel()
		n.flushJournal(fctx)
		n.members.AnnounceLeaving(n.cfg.LeaveTimeout / 2)
		n.flushJournal(fctx)
		if lerr := n.members.Leave(n.cfg.LeaveTimeout); lerr != nil {
			n.log.Warn("leave did not complete", "err", lerr)
		}
		done := make(chan struct{})
		go func() { n.server.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			n.server.Stop()
			<-done
		}
		n.flushJournal(fctx) // writes served during the drain
		err = n.shutdown()
	})
	return err
}

// Kill stops the node abruptly, as a crash would: no leave message, open
// calls cut. Peers find out through failure detection.
func (n *Node) Kill() {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		n.ringNotes.notify()
		n.server.Stop()
		_ = n.shutdown()
	})
}

// flushJournal writes pending write-behind records until the journal is
// empty or ctx ends.
func (n *Node) flushJournal(ctx context.Context) {
	if n.flusher == nil {
		return
	}
	if err := n.flusher.Flush(ctx); err != nil {
		n.log.Error("write-behind journal not fully flushed; the rest is flushed on the next start", "err", err)
	}
}

func (n *Node) shutdown() error {
	if n.obs.reg != nil {
		_ = n.obs.reg.Unregister() // no scrape reads the store or journal from here on
	}
	if n.stopFlush != nil {
		n.stopFlush()
	}
	err := n.members.Shutdown()
	close(n.stop)
	n.wg.Wait()
	if n.hot != nil {
		n.hot.close() // its streams use the peer connections
	}
	n.peers.close()
	n.store.Close()
	return err
}
