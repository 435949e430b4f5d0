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
//   - An acknowledged write-behind write is in the journal on disk (fsync)
//     of its owner and of its replicas (NamespaceSpec.Replicas, 2 by
//     default), and reaches the database: after a crash on the next start,
//     and after the loss of a node and its disk through the node that takes
//     its partitions over, which reads it from then on.
//   - With the hot cache on (Config.HotCacheBytes), a node answers the keys
//     it does not own but is asked for often from the owner's earlier
//     answer, invalidated by the owner over a stream; a Get through another
//     node than the one that took a write may return the previous value
//     until then, at most Config.HotCacheTTL.
//   - Close ends everything the node started: no goroutine of it outlives
//     Close.
//
// Every call, whichever door it comes in by, runs through one function,
// internal/engine.Engine.Execute (docs/architecture.md draws the path).
package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/ringcache/ringcache/internal/admin"
	"github.com/ringcache/ringcache/internal/buildinfo"
	"github.com/ringcache/ringcache/internal/connlimit"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/hotcache"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/nodemetrics"
	"github.com/ringcache/ringcache/internal/peer"
	"github.com/ringcache/ringcache/internal/rawnet"
	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/internal/table"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// transportWindow is the HTTP/2 flow-control window of every stream and
// connection, both ways.
const transportWindow = 1 << 20

// Node is a running ringcache server.
type Node struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	store    *store.Store
	journal  *journal.Journal // nil without write-behind namespaces
	flusher  *journal.Flusher // nil without write-behind namespaces
	clock    *hlc.Clock
	mark     *hlc.Mark // nil without Config.ClockPath
	engine   *engine.Engine
	services *service.Services
	admin    *admin.Server
	resp     *respDoor // nil without a RESP address
	hub      service.Hub
	hot      *hotcache.Cache // nil when disabled
	peers    *peer.Pool
	members  *membership.Membership
	lis      net.Listener
	conns    *connlimit.Listener // lis, bounded (limits.go)
	grpcAddr string
	server   *grpc.Server
	health   *health.Server
	healthMu sync.Mutex // orders health updates (notServing, setServing)
	obs      observability
	sec      security
	closing  atomic.Bool
	warm     warmState // hot-key list and the warm after a restart (prewarm.go)
	// joined is set once the node has joined its cluster (or bootstrapped
	// alone); table runs the partition table protocol (table.go).
	joined atomic.Bool
	table  *table.Coordinator
	// departed remembers who dropped out of the ring without a graceful
	// leave (merge.go); used by table installs only, which take turns.
	departed membership.Departures
	stop     chan struct{}
	wg       sync.WaitGroup

	// closers release what New opened, in reverse order; New runs them
	// itself when it fails half-way.
	closers   []func()
	closeOnce sync.Once
}

// New starts a node: it listens for gRPC, starts gossip, joins the seeds in
// the background and serves. The node reports NOT_SERVING on the gRPC health
// service until its ring is built.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{cfg: cfg, log: cfg.Logger, now: time.Now, stop: make(chan struct{}), clock: &hlc.Clock{}}
	if cfg.Clock != nil {
		n.now = cfg.Clock.Now
		n.clock.Wall = cfg.Clock.Now
	}
	defer func() {
		if err != nil {
			n.release()
		}
	}()
	if err := n.openSecurity(); err != nil {
		return nil, err
	}
	if err := n.openStorage(); err != nil {
		return nil, err
	}
	n.openHotKeys()
	n.obs.tracer = cfg.tracerProvider().Tracer(tracerName)
	n.peers = peer.New(peer.Config{Linger: cfg.ForwardTimeout, Credentials: n.peerCredentials(), Dialer: cfg.PeerDialer, DialOptions: cfg.peerDialOptions(),
		Latency: n.latency(nodemetrics.ForwardLatency)})
	n.closers = append(n.closers, n.peers.Close)
	if cfg.HotCacheBytes > 0 {
		n.hot = hotcache.New(hotcache.Config{
			MaxBytes: cfg.HotCacheBytes, MinRate: cfg.HotCacheMinRate, TTL: cfg.HotCacheTTL,
			Clock: cfg.Clock, Open: n.peers.WatchInvalidations, Logger: n.log,
		})
		n.closers = append(n.closers, n.hot.Close) // before the peer pool: its streams use it
	}
	if err := n.startEngine(); err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	if err := n.listenRESP(); err != nil {
		return nil, err
	}
	if err := n.join(); err != nil {
		return nil, err
	}
	if cfg.MeterProvider != nil {
		if n.obs.reg, err = n.registerMetrics(cfg.MeterProvider); err != nil {
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
		// First to go: no scrape reads the store or journal after this.
		n.closers = append(n.closers, func() { _ = n.obs.reg.Unregister() })
	}
	n.start()
	n.log.Info("node started", "name", cfg.Name, "version", buildinfo.Version(), "grpc", n.grpcAddr, "gossip", n.members.LocalAddr())
	return n, nil
}

// openStorage opens the store and, with write-behind namespaces, the
// journal and its flusher.
func (n *Node) openStorage() error {
	var err error
	if n.cfg.ClockPath != "" {
		if n.mark, err = hlc.OpenMark(n.clock, n.cfg.ClockPath, hlc.MarkOptions{Logger: n.log}); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		n.closers = append(n.closers, func() { _ = n.mark.Close() })
	}
	if n.store, err = store.New(store.Config{MaxBytes: n.cfg.MaxMemory, Clock: n.cfg.Clock}); err != nil {
		return err
	}
	n.closers = append(n.closers, n.store.Close)
	jc := n.cfg.Journal
	if jc.Path == "" {
		return nil
	}
	if n.journal, err = journal.Open(jc.Path, journal.Options{MaxPending: jc.MaxPending, MaxBytes: jc.MaxBytes, Now: n.now}); err != nil {
		return fmt.Errorf("node: write-behind journal: %w", err)
	}
	n.closers = append(n.closers, func() {
		if err := n.journal.Close(); err != nil {
			n.log.Error("closing the write-behind journal", "err", err)
		}
	})
	// Versions after a restart must exceed those already in the journal,
	// even if the wall clock went backwards meanwhile.
	v, err := n.journal.MaxVersion()
	if err != nil {
		return fmt.Errorf("node: read the journal's versions: %w", err)
	}
	n.clock.Seed(v)
	return nil
}

func (n *Node) startEngine() error {
	cfg := n.cfg
	specs := make([]engine.NamespaceSpec, len(cfg.Namespaces))
	writers := map[string]strategy.Writer{}
	for i, s := range cfg.Namespaces {
		specs[i] = engine.NamespaceSpec{Policy: s.Policy, Loader: s.Loader, Writer: s.Writer, Audit: s.Audit, Sensitive: s.Sensitive,
			Replicas: s.Replicas, MinReplicas: s.MinReplicas}
		if s.Policy.Write == strategy.WriteBehind {
			writers[s.Policy.Name] = s.Writer
		}
	}
	var err error
	n.engine, err = engine.New(engine.Config{
		Self: cfg.Name, Namespaces: specs, Store: n.store, Journal: n.journal, Versions: n.clock,
		Peers: n.peers, Hot: n.hot, HotKeys: n.warm.book.Tracker(), Ring: cfg.Ring, ForwardTimeout: cfg.ForwardTimeout,
		HandoffWindow: cfg.HandoffWindow, Now: n.now, OnChange: n.hub.Publish, Merged: n.kickFlusher, Tracer: n.obs.tracer, Logger: n.log,
		Auth: n.sec.auth, Audit: n.sec.audit, Sealer: n.sec.sealer,
		Replication: engine.ReplicationConfig{Timeout: cfg.ReplicationTimeout, Latency: n.replicationLatency()},
		Warm:        n.warmConfig(),
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.closers = append(n.closers, n.engine.Close)
	for name, w := range writers { // replicas drop their copies of what was flushed
		writers[name] = n.engine.FlushedWriter(name, w)
	}
	if n.journal != nil {
		jc := cfg.Journal
		n.flusher = journal.NewFlusher(n.journal, journal.FlusherConfig{
			Open:    n.openSealed(),
			Writers: writers, Interval: jc.FlushInterval, BatchSize: jc.BatchSize, MaxAttempts: jc.MaxAttempts,
			MinBackoff: jc.MinBackoff, MaxBackoff: jc.MaxBackoff, Clock: n.clock, Logger: n.log,
			Superseded: n.engine.Superseded,
		})
	}
	n.table = n.newTable()
	n.services = service.New(service.Config{Engine: n.engine, Hub: &n.hub, MaxBatch: cfg.MaxBatchKeys, Auth: n.sec.auth, Tables: n.table, Logger: n.log})
	n.admin = admin.New(admin.Config{
		Name: cfg.Name, Members: func() []membership.Member { return n.members.Members() },
		Keyring: func() admin.Keyring { return n.members }, KeyFile: cfg.GossipKeyFile, Logger: n.log,
		Engine: n.engine, Services: n.services, Store: n.store, Clock: n.clock, Now: n.now, Hot: n.hot, Journal: n.journal, Flusher: n.flusher,
	})
	return nil
}

// listen opens the gRPC listener and registers the services.
func (n *Node) listen() error {
	cfg := n.cfg
	var err error
	if n.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return fmt.Errorf("node: listen for gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	n.lis = n.limitListener(rawnet.Listener(n.lis))
	n.closers = append(n.closers, func() { n.lis.Close() }, n.sec.guard.Wait)
	if n.grpcAddr, err = advertiseAddr(cfg.AdvertiseGRPCAddr, cfg.AdvertiseGossipAddr, n.lis.Addr().(*net.TCPAddr)); err != nil {
		return err
	}
	maxValue := 0
	for _, s := range cfg.Namespaces {
		maxValue = max(maxValue, s.Policy.MaxValueBytes)
	}
	secOpts, err := n.serverSecurity()
	if err != nil {
		return err
	}
	n.server = grpc.NewServer(append(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(max(4<<20, maxValue+64<<10)),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.ForceServerCodecV2(service.Codec{}), // invalid UTF-8 is INVALID_ARGUMENT, not INTERNAL
		grpc.WaitForHandlers(true),               // Stop returns only once no handler can touch the store
		// Fixed HTTP/2 windows: with a window set, grpc-go stops its BDP
		// probing, whose pings and window updates cost every busy
		// connection CPU; 1 MiB per stream covers a loopback or LAN hop.
		grpc.InitialWindowSize(transportWindow),
		grpc.InitialConnWindowSize(transportWindow),
	}, append(secOpts, cfg.connectionOptions()...)...), n.serverOptions()...)...)
	n.health = health.NewServer()
	n.notServing()
	healthpb.RegisterHealthServer(n.server, n.health)
	pb.RegisterCacheServer(n.server, n.services.Cache())
	pb.RegisterPeerServer(n.server, n.services.Peer())
	pb.RegisterAdminServer(n.server, n.admin)
	reflection.Register(n.server)
	return nil
}

// join starts gossip; joining the seeds goes on in the background.
func (n *Node) join() error {
	cfg := n.cfg
	var err error
	n.members, err = membership.New(membership.Config{
		Name:             cfg.Name,
		BindAddr:         cfg.GossipAddr,
		AdvertiseAddr:    cfg.AdvertiseGossipAddr,
		GRPCAddr:         n.grpcAddr,
		Join:             cfg.Join,
		Preset:           cfg.GossipPreset,
		Keys:             cfg.GossipKeys,
		Partitions:       partitionCount(cfg.Ring),
		DefaultNamespace: cfg.Ring.DefaultNamespace,
		RESPAddr:         n.RESPAddr(),
		Transport:        cfg.GossipTransport,
		Tune:             cfg.TuneGossip,
		Logger:           n.log,
		// Probe acks carry the hybrid logical clock, so versions of nodes
		// that exchange no calls stay ordered within a probe interval. A
		// value too far ahead of the wall clock is refused (hlc.Observe).
		AckPayload: func() []byte { return binary.BigEndian.AppendUint64(nil, n.clock.Send()) },
		PeerPayload: func(b []byte) {
			if len(b) == 8 {
				_ = n.clock.Observe(binary.BigEndian.Uint64(b)) // counted in Rejected
			}
		},
	})
	if err != nil {
		return err
	}
	// Three quarters of the least time to be declared dead: a stall
	// measured from ticks is up to an eighth longer than it was.
	n.engine.WatchStalls(n.members.SuspicionTimeout()*3/4, engine.StallHooks{Confirm: n.confirmTable, LeftOut: n.notServing})
	n.closers = append(n.closers, func() {
		if err := n.members.Shutdown(); err != nil {
			n.log.Warn("gossip shutdown", "err", err)
		}
	})
	return nil
}

// start serves: the ring, the flusher, the hot cache and gRPC. Their
// goroutines end at Close, before anything they use is released.
func (n *Node) start() {
	n.closers = append(n.closers, func() { close(n.stop); n.wg.Wait() })
	select {
	case <-n.members.Joined(): // no seeds: joined at once
		n.joined.Store(true)
	default:
	}
	n.reconcile() // a table of at least this node
	if n.mark != nil {
		n.wg.Go(func() { n.mark.Run(n.stop) })
	}
	if n.flusher != nil {
		// Replays whatever a previous run left in the journal.
		fctx, stopFlush := context.WithCancel(context.Background())
		n.closers = append(n.closers, stopFlush)
		n.wg.Go(func() { n.flusher.Run(fctx) })
	}
	if n.hot != nil {
		n.wg.Go(func() { n.hot.Run(n.stop) })
	}
	n.wg.Go(n.ringLoop)
	if n.warm.book != nil {
		n.wg.Go(n.hotKeysLoop)
	}
	n.wg.Go(n.awaitJoin)
	n.warnInsecure()
	n.wg.Go(func() {
		if err := n.server.Serve(n.lis); err != nil {
			n.log.Error("gRPC server stopped", "err", err)
		}
	})
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// GRPCAddr returns the address peers and clients dial.
func (n *Node) GRPCAddr() string { return n.grpcAddr }

// GossipAddr returns the gossip address the node advertises.
func (n *Node) GossipAddr() string { return n.members.LocalAddr() }

// Ring returns the current ring snapshot.
func (n *Node) Ring() *ring.Ring { return n.engine.Ring() }

// Settling reports whether partitions this node took over are still being
// handed over by their previous owners (the warm hand-over and its fence,
// docs/architecture.md); tests wait for it before they write.
func (n *Node) Settling() bool { return n.engine.Settling() }

// Members returns the cluster as this node sees it.
func (n *Node) Members() []Member {
	ms := n.members.Members()
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = Member{Name: m.Name, GossipAddr: m.GossipAddr, GRPCAddr: m.GRPCAddr, State: MemberState(m.State.String()), TableVersion: m.TableVersion}
	}
	return out
}

// Ready reports what the gRPC health service reports: true once the node
// has joined its cluster (or bootstrapped alone), built its ring and
// warmed its hot keys or spent the warm's budget (prewarm.go), false again
// from the start of Close, and false while it cannot take a new client
// (limits.go).
func (n *Node) Ready() bool {
	return !n.closing.Load() && n.engine.Ready() && n.warm.gate.Open() && n.acceptErr() == nil
}

// NotReady returns nil when the node is ready, else why it is not, in
// words an operator can act on (/readyz shows it).
func (n *Node) NotReady() error {
	switch {
	case n.closing.Load():
		return errors.New("draining: the node is leaving its cluster")
	case n.acceptErr() != nil:
		return n.acceptErr()
	case n.Ready():
		return nil
	case n.engine.Ready():
		return n.warmErr()
	case n.engine.LeftOut():
		return engine.ErrLeftOut
	}
	st := n.members.JoinStatus()
	switch st.State {
	case membership.JoinRefused:
		return fmt.Errorf("not joined: %w", st.Err)
	case membership.JoinUnreachable:
		if n.cfg.BootstrapAlone {
			return fmt.Errorf("joining: no seed has answered yet; serving alone after the bootstrap timeout (%v): %w", n.cfg.BootstrapTimeout, st.Err)
		}
		return fmt.Errorf("joining: no seed has answered yet (start more nodes, or set --bootstrap-alone to serve as a cluster of one): %w", st.Err)
	}
	return errors.New("joining its cluster")
}

// RotateGossipKeys replaces the gossip keyring with keys (the first is
// primary), installing, switching and removing in a safe order; see
// internal/membership for the cluster-wide procedure.
func (n *Node) RotateGossipKeys(keys [][]byte) error { return n.members.ReloadKeys(keys) }

// partitionCount is the partition count of c, its default applied.
func partitionCount(c ring.Config) int {
	if c.PartitionCount == 0 {
		return ring.DefaultPartitionCount
	}
	return c.PartitionCount
}
