package membership

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// State of a member as this node sees it.
type State int

// Member states.
const (
	StateAlive State = iota + 1
	StateDead
	StateLeft
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown"
}

// Member is one node of the cluster.
type Member struct {
	Name       string
	GossipAddr string
	GRPCAddr   string
	State      State
	// Since is when the member started; TableVersion the partition table
	// it routes by; RESPAddr its Redis-protocol address ("" when none).
	Since        time.Time
	TableVersion uint64
	RESPAddr     string
}

// Presets of failure-detection timers.
const (
	// PresetLAN suits a data-centre network or Kubernetes: a dead node is
	// suspected after about 1 s (probe interval 1 s, timeout 500 ms) and
	// declared dead after about 4-6 s more (suspicion multiplier 4).
	PresetLAN = "lan"
	// PresetLocal suits nodes on one host: faster probes (1 s interval,
	// 200 ms timeout), suspicion multiplier 3, so a dead node is out in 3-5 s.
	PresetLocal = "local"
)

// Defaults of the optional Config fields.
const (
	DefaultRetryInterval = time.Second
	// DefaultMaxRetryInterval caps the join backoff of a node that sees no
	// other member. A node cut off alone by a partition rejoins only by
	// it (its peers stop gossiping to a dead node after
	// GossipToTheDeadTime), so the cap is how long a healed partition may
	// wait to merge: 15 s was seen in chaos rounds; an attempt costs a
	// dial per seed.
	DefaultMaxRetryInterval = 5 * time.Second
	DefaultRejoinInterval   = 30 * time.Second
	// DefaultJoinWarnAfter: see Config.JoinWarnAfter.
	DefaultJoinWarnAfter = 10 * time.Second
	// DefaultLinger keeps a departed member listed for an hour: long enough
	// for an operator looking into an incident, and for a dead-member alert,
	// to see who went away; short enough that a cluster whose members come
	// and go under new names (a Deployment, an autoscaler) lists a bounded
	// number of them: at one replacement a minute, about 60.
	DefaultLinger = time.Hour
)

// Config configures a Membership. The zero value of every optional field is
// a working default. New does not modify the Config it is given.
type Config struct {
	// Name must be unique in the cluster. Required.
	Name string
	// BindAddr is host:port for gossip (TCP and UDP). Port 0 picks a free port.
	BindAddr string
	// AdvertiseAddr is host:port other nodes use to reach this one; empty
	// means BindAddr (with the picked port).
	AdvertiseAddr string
	// GRPCAddr is published in node metadata so peers can forward to it.
	GRPCAddr string
	// RESPAddr, when set, is published for peers' CLUSTER SLOTS answers.
	RESPAddr string
	// Partitions is the node's partition count, DefaultNamespace the
	// namespace of unprefixed Redis keys; peers that differ in either are
	// refused (ErrIncompatible). Partitions 0 checks nothing.
	Partitions       int
	DefaultNamespace string
	// Join lists seed addresses (host:port, or a DNS name that resolves to
	// several peers). Entries may name this node itself or peers that are
	// not up yet: joining retries in the background for as long as this
	// node sees no other member.
	Join []string
	// RetryInterval is the first delay between join attempts while alone;
	// later delays double, with ±50% jitter, up to MaxRetryInterval.
	// Defaults 1 s and 15 s.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration
	// RejoinInterval between contacts with the seeds once joined, which
	// heals network partitions; default 30 s.
	RejoinInterval time.Duration
	// JoinWarnAfter is how long join attempts may keep failing the same way
	// (no seed answers, or seeds answer and do not admit this node) before
	// the node logs a warning, or an error for a refusal; until then it
	// logs at info, as nodes started together (a StatefulSet, a compose
	// file) do not listen yet, or have not finished starting, at each
	// other's first attempts. Default 10 s.
	JoinWarnAfter time.Duration
	// Linger is how long a dead or left member stays listed before it is
	// forgotten; default DefaultLinger (1 h).
	Linger time.Duration
	// Preset is PresetLAN (default) or PresetLocal.
	Preset string
	// Keys, when set, encrypt gossip: the first key (the primary) encrypts,
	// all of them are tried to decrypt. Each is 16, 24 or 32 bytes (AES-128,
	// -192, -256). See the package doc for rotating them.
	Keys [][]byte
	// SecretKey is the single-key form of Keys; set one or the other.
	SecretKey []byte
	// Transport replaces memberlist's UDP/TCP transport (tests use it to cut
	// links); nil means a NetTransport on BindAddr.
	Transport memberlist.Transport
	// Tune, when set, adjusts the memberlist config last (tests use it for
	// fast timers). It must leave encryption (SecretKey, Keyring) alone.
	Tune func(*memberlist.Config)
	// Logger receives operator messages; nil discards them.
	Logger *slog.Logger
	// AckPayload, when set, is sent with every probe ack, and PeerPayload
	// receives what peers sent with theirs (nodes use it to keep their
	// hybrid logical clocks close). Both are used only when gossip is
	// encrypted: see the package doc. PeerPayload runs on memberlist's
	// goroutine: it must be quick, must not block, must not keep the slice,
	// and must bound what it adopts.
	AckPayload  func() []byte
	PeerPayload func([]byte)
}

// Membership is a running gossip member. Its methods are safe for concurrent
// use.
type Membership struct {
	cfg       Config
	suspicion time.Duration // SuspicionTimeout
	list      *memberlist.Memberlist
	keyring   *memberlist.Keyring // nil when gossip is not encrypted
	transport *watchTransport
	log       *slog.Logger
	changed   chan struct{}
	stop      chan struct{}
	listReady chan struct{} // closed once list is set
	joined    chan struct{}
	// leaving is closed when this node announces it is leaving
	// (isLeaving): its metadata carries the leaving mark, its join loop
	// stops, and joinDone is closed once it has.
	leaving     chan struct{}
	leavingOnce sync.Once
	joinDone    chan struct{}
	joinOnce    sync.Once
	wg          sync.WaitGroup
	// listLeave is memberlist's Leave, which may run on after Leave
	// returns (at most its timeout); Shutdown does not wait for it.
	listLeave sync.WaitGroup
	keyMu     sync.Mutex // serializes keyring changes
	// updateMu serializes memberlist's UpdateNode, which reads the local
	// node's state unlocked while another call writes it.
	updateMu sync.Mutex

	mu         sync.Mutex
	nodes      map[string]record // every node seen within Linger
	counts     Counts            // of nodes, by state
	departures []departure       // oldest first; drives pruning
	exits      map[string]exits  // when gossip last saw each member leave and die; Exits
	self       Member
	stopped    bool
	join       joinRecord

	since      time.Time     // when New ran: the node's age, published
	table      atomic.Uint64 // version of the partition table it routes by, published
	generation atomic.Uint64 // changes to nodes; see Generation

	// Table versions in gossip messages (tables.go).
	tables        *memberlist.TransmitLimitedQueue
	tableMu       sync.Mutex // orders this node's table messages: table and tableSeq change together
	tableSeq      uint64
	legacy        atomic.Bool           // an alive member reads table versions from metadata only
	pendingTables map[string]tableEntry // under mu: entries for starts not seen yet
}

// New starts gossiping and joins cfg.Join in the background. Changed is
// signalled (coalesced, never blocking) after every membership change.
func New(cfg Config) (*Membership, error) {
	if cfg.Name == "" {
		return nil, errors.New("membership: name is required")
	}
	keys, err := configKeys(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Keys, cfg.SecretKey = keys, nil
	cfg.Join = append([]string(nil), cfg.Join...)
	cfg.RetryInterval = orDefault(cfg.RetryInterval, DefaultRetryInterval)
	cfg.MaxRetryInterval = max(orDefault(cfg.MaxRetryInterval, DefaultMaxRetryInterval), cfg.RetryInterval)
	cfg.RejoinInterval = orDefault(cfg.RejoinInterval, DefaultRejoinInterval)
	cfg.JoinWarnAfter = orDefault(cfg.JoinWarnAfter, DefaultJoinWarnAfter)
	cfg.Linger = orDefault(cfg.Linger, DefaultLinger)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		since:     time.Now(),
		cfg:       cfg,
		log:       logger,
		changed:   make(chan struct{}, 1),
		joined:    make(chan struct{}),
		stop:      make(chan struct{}),
		listReady: make(chan struct{}),
		leaving:   make(chan struct{}),
		joinDone:  make(chan struct{}),
		nodes:     map[string]record{},
	}
	mc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	m.suspicion = time.Duration(mc.SuspicionMult) * mc.ProbeInterval
	m.tables = &memberlist.TransmitLimitedQueue{NumNodes: m.aliveCount, RetransmitMult: mc.RetransmitMult}
	created := mc.Transport == nil
	if m.transport, err = newWatchTransport(mc); err != nil {
		return nil, fmt.Errorf("membership: start gossip on %s: %w", cfg.BindAddr, err)
	}
	mc.Transport = m.transport
	list, err := memberlist.Create(mc)
	if err != nil {
		close(m.stop)
		if created {
			_ = m.transport.Shutdown()
		}
		return nil, fmt.Errorf("membership: start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.list = list
	close(m.listReady)
	m.mu.Lock()
	self, ok := m.nodes[cfg.Name]
	if !ok { // memberlist announces the local node on Create; be safe anyway
		self = record{Member: Member{Name: cfg.Name, GossipAddr: list.LocalNode().Address(), GRPCAddr: cfg.GRPCAddr, State: StateAlive}}
		m.setLocked(self)
	}
	m.self = self.Member
	m.mu.Unlock()
	if len(m.seeds()) == 0 {
		m.markJoined() // the first node of a cluster has nobody to wait for
	}
	m.signal()
	m.wg.Add(1)
	go m.joinLoop()
	return m, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (m *Membership) memberlistConfig() (*memberlist.Config, error) {
	var mc *memberlist.Config
	switch m.cfg.Preset {
	case "", PresetLAN:
		mc = memberlist.DefaultLANConfig()
	case PresetLocal:
		mc = memberlist.DefaultLocalConfig()
	default:
		return nil, fmt.Errorf("membership: unknown preset %q (use %s or %s)", m.cfg.Preset, PresetLAN, PresetLocal)
	}
	mc.Name = m.cfg.Name
	host, port, err := splitHostPort(m.cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("membership: gossip address: %w", err)
	}
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", 0
	if m.cfg.AdvertiseAddr != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(m.cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("membership: advertise address: %w", err)
		}
	}
	// A node restarted under the same name but a new address (a rescheduled
	// pod) may reclaim its name once the old incarnation is dead this long.
	mc.DeadNodeReclaimTime = 10 * time.Second
	mc.SecretKey = nil
	if len(m.cfg.Keys) > 0 {
		if mc.Keyring, err = memberlist.NewKeyring(m.cfg.Keys[1:], m.cfg.Keys[0]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
		}
	}
	mc.Transport = m.cfg.Transport
	mc.Delegate = delegate{m}
	mc.Events = events{m}
	mc.Alive = guard{m}
	mc.Merge = guard{m}
	mc.Logger = log.New(slogWriter{m.log}, "", 0)
	mc.LogOutput = nil
	if m.cfg.Tune != nil {
		m.cfg.Tune(mc)
	}
	if mc.EncryptionEnabled() {
		m.keyring = mc.Keyring
	}
	// Ack payloads are trusted only from holders of the cluster key: see
	// the package doc.
	mc.Ping = nil
	if m.cfg.AckPayload != nil && m.cfg.PeerPayload != nil && mc.EncryptionEnabled() && mc.GossipVerifyIncoming {
		mc.Ping = pings{m.cfg.AckPayload, m.cfg.PeerPayload}
	}
	return mc, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}

// Changed is signalled after membership changes. One receiver only.
func (m *Membership) Changed() <-chan struct{} { return m.changed }

func (m *Membership) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// LocalAddr returns the gossip address this node advertises.
func (m *Membership) LocalAddr() string { return m.self.GossipAddr }

// updateNode re-advertises this node's metadata, waiting at most timeout
// for the broadcast. Calls take turns; each publishes the metadata as it
// is when its turn comes.
func (m *Membership) updateNode(timeout time.Duration) error {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	return m.list.UpdateNode(timeout)
}

// Shutdown stops gossip without a leave message (peers will detect the
// node as dead) and stops the join loop, closing a join attempt in flight.
// Safe to call more than once. memberlist does not wait for its own
// goroutines: a probe in flight may still finish, and log, for up to a probe
// timeout after Shutdown returns.
func (m *Membership) Shutdown() error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	m.mu.Unlock()
	close(m.stop)
	err := m.list.Shutdown()
	m.wg.Wait()
	return err
}

type delegate struct{ m *Membership }

func (d delegate) NodeMeta(limit int) []byte {
	b := d.m.metaBytes()
	if len(b) > limit {
		return nil
	}
	return b
}
func (d delegate) NotifyMsg(b []byte) { d.m.receiveTable(b) }
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.m.tables.GetBroadcasts(overhead, limit)
}
func (d delegate) LocalState(bool) []byte            { return d.m.knownTables() }
func (d delegate) MergeRemoteState(b []byte, _ bool) { d.m.mergeTables(b) }

// aliveCount is how many members are alive, this node included (at least
// 1): the size memberlist scales a broadcast's retransmissions by.
func (m *Membership) aliveCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return max(1, m.counts.Alive)
}

// slogWriter forwards memberlist's log lines ("[WARN] memberlist: ...") to
// slog at the matching level.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[ERR]": slog.LevelError, "[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo, "[DEBUG]": slog.LevelDebug} {
		if strings.HasPrefix(line, prefix) {
			level = l
			line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

// pings carries the caller's payload on probe acks. It is installed only
// when gossip is encrypted and verified, so every ack it sees came from a
// holder of the cluster key.
type pings struct {
	ack  func() []byte
	peer func([]byte)
}

func (p pings) AckPayload() []byte { return p.ack() }

func (p pings) NotifyPingComplete(_ *memberlist.Node, _ time.Duration, payload []byte) {
	if len(payload) > 0 {
		p.peer(payload)
	}
}

// SuspicionTimeout is the least time a suspected member has to refute
// before it is declared dead (memberlist: the suspicion multiplier times
// the probe interval, for clusters of up to 10 members; more for larger
// ones and without confirmations). A member stopped for less than it is
// never taken out of the others' tables.
func (m *Membership) SuspicionTimeout() time.Duration { return m.suspicion }
