// Package membership wraps hashicorp/memberlist: it gossips which nodes are
// in the cluster and each node's gRPC address (carried in node metadata).
//
// memberlist calls its event hooks while holding its own locks, so the hooks
// here only copy what they need and signal, without blocking, one channel
// that a single consumer (the node's ring builder) drains.
//
// The member list is kept from those hooks alone: the *Node values that
// memberlist.Members returns are mutated by memberlist after it lets go of
// its lock, so reading them races. The price is that memberlist reports no
// event when it starts to suspect a node; a suspect node shows as alive (and
// keeps its keys) until it is declared dead.
package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
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

// Config configures a Membership. The zero value of every optional field is
// a working default.
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
	// Join lists seed addresses (host:port, or a DNS name that resolves to
	// several peers). Entries may name this node itself or peers that are
	// not up yet: joining retries in the background every RetryInterval for
	// as long as this node sees no other member.
	Join []string
	// RetryInterval between join attempts while alone; default 2 s.
	RetryInterval time.Duration
	// RejoinInterval between contacts with the seeds once joined, which
	// heals network partitions; default 30 s.
	RejoinInterval time.Duration
	// Preset is PresetLAN (default) or PresetLocal.
	Preset string
	// SecretKey, when set (16, 24 or 32 bytes), encrypts gossip.
	SecretKey []byte
	// Transport replaces memberlist's UDP/TCP transport (tests use it to cut
	// links); nil means a NetTransport on BindAddr.
	Transport memberlist.Transport
	// Tune, when set, adjusts the memberlist config last (tests use it for
	// fast timers).
	Tune func(*memberlist.Config)
	// Logger receives operator messages; nil discards them.
	Logger *slog.Logger
	// AckPayload, when set, is sent with every probe ack, and PeerPayload
	// receives what peers sent with theirs (nodes use it to keep their
	// hybrid logical clocks close). PeerPayload runs on memberlist's
	// goroutine: it must be quick and must not block.
	AckPayload  func() []byte
	PeerPayload func([]byte)
}

// Membership is a running gossip member. Its methods are safe for concurrent
// use.
type Membership struct {
	cfg      Config
	list     *memberlist.Memberlist
	log      *slog.Logger
	changed  chan struct{}
	stop     chan struct{}
	joined   chan struct{}
	joinOnce sync.Once
	wg       sync.WaitGroup

	mu      sync.Mutex
	nodes   map[string]Member // every node seen, with its latest state
	leaving map[string]bool   // nodes that announced a graceful leave
	self    Member
	stopped bool

	leavingSelf atomic.Bool // this node is leaving; published in its metadata
}

type meta struct {
	GRPC    string `json:"grpc"`
	Leaving bool   `json:"leaving,omitempty"`
}

// New starts gossiping and joins cfg.Join in the background. Changed is
// signalled (coalesced, never blocking) after every membership change.
func New(cfg Config) (*Membership, error) {
	if cfg.Name == "" {
		return nil, errors.New("membership: name is required")
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.RejoinInterval <= 0 {
		cfg.RejoinInterval = 30 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		cfg:     cfg,
		log:     logger,
		changed: make(chan struct{}, 1),
		joined:  make(chan struct{}),
		stop:    make(chan struct{}),
		nodes:   map[string]Member{},
		leaving: map[string]bool{},
	}
	mc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.list = list
	m.mu.Lock()
	self, ok := m.nodes[cfg.Name]
	m.mu.Unlock()
	if !ok { // memberlist announces the local node on Create; be safe anyway
		self = Member{Name: cfg.Name, GossipAddr: list.LocalNode().Address(), GRPCAddr: cfg.GRPCAddr, State: StateAlive}
		m.mu.Lock()
		m.nodes[cfg.Name] = self
		m.mu.Unlock()
	}
	m.self = self
	if len(m.seeds()) == 0 {
		m.markJoined() // the first node of a cluster has nobody to wait for
	}
	m.signal()
	m.wg.Add(1)
	go m.joinLoop()
	return m, nil
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
	mc.SecretKey = m.cfg.SecretKey
	mc.Transport = m.cfg.Transport
	mc.Delegate = delegate{m}
	mc.Events = events{m}
	if m.cfg.AckPayload != nil && m.cfg.PeerPayload != nil {
		mc.Ping = pings{m.cfg.AckPayload, m.cfg.PeerPayload}
	}
	mc.Logger = log.New(slogWriter{m.log}, "", 0)
	mc.LogOutput = nil
	if m.cfg.Tune != nil {
		m.cfg.Tune(mc)
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

func (m *Membership) metaBytes() []byte {
	b, _ := json.Marshal(meta{GRPC: m.cfg.GRPCAddr, Leaving: m.leavingSelf.Load()})
	return b
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

// joinLoop joins the seeds, and keeps trying every RetryInterval while this
// node is alone (seeds may not be up yet, or this node was cut off). Once in
// a cluster it still contacts the seeds every RejoinInterval: memberlist
// stops probing nodes it declared dead, so without this two halves of a
// healed network partition would stay two clusters.
func (m *Membership) joinLoop() {
	defer m.wg.Done()
	seeds := m.seeds()
	if len(seeds) == 0 {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	lastContact := time.Time{}
	warned := false
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		alone := m.list.NumMembers() <= 1
		if alone || time.Since(lastContact) >= m.cfg.RejoinInterval {
			n, err := m.list.Join(seeds)
			lastContact = time.Now()
			switch {
			case m.list.NumMembers() > 1:
				if alone {
					m.log.Info("joined cluster", "members", m.list.NumMembers())
				}
				m.markJoined()
				warned = false
			case !warned:
				m.log.Warn("no peer reachable yet; retrying in the background", "seeds", seeds, "contacted", n, "err", err)
				warned = true
			default:
				m.log.Debug("join attempt failed; retrying", "seeds", seeds, "err", err)
			}
		}
		t.Reset(m.cfg.RetryInterval)
	}
}

func (m *Membership) markJoined() { m.joinOnce.Do(func() { close(m.joined) }) }

// Joined is closed once this node has joined at least one other node, or at
// once when it has no seeds (the first node of a cluster).
func (m *Membership) Joined() <-chan struct{} { return m.joined }

// seeds returns the join list without this node's own address.
func (m *Membership) seeds() []string {
	self := m.LocalAddr()
	var out []string
	for _, s := range m.cfg.Join {
		if s != "" && s != self && s != m.cfg.BindAddr {
			out = append(out, s)
		}
	}
	return out
}

// Alive returns the alive members sorted by name: the set the ring is built
// from.
func (m *Membership) Alive() []Member {
	return m.snapshot(func(x Member) bool { return x.State == StateAlive })
}

// Members returns every node this node knows of, departed ones included,
// sorted by name.
func (m *Membership) Members() []Member {
	return m.snapshot(func(Member) bool { return true })
}

func (m *Membership) snapshot(keep func(Member) bool) []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.nodes))
	for _, n := range m.nodes {
		if keep(n) {
			out = append(out, n)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// toMember copies n; it must run under memberlist's lock (in an event hook).
// memberlist does not keep Node.State current, so the state is set by the
// caller.
func toMember(n *memberlist.Node) (Member, meta) {
	var md meta
	_ = json.Unmarshal(n.Meta, &md) // a peer with bad metadata has no gRPC address
	return Member{Name: n.Name, GossipAddr: n.Address(), GRPCAddr: md.GRPC, State: StateAlive}, md
}

// Leave tells the cluster this node is leaving and waits up to timeout for
// the message to spread. Peers then list it as left rather than dead: it
// first publishes a leaving mark in its metadata, because memberlist's own
// leave event does not say whether a node left or died.
func (m *Membership) Leave(timeout time.Duration) error {
	if !m.leavingSelf.Load() {
		m.AnnounceLeaving(timeout / 2)
	}
	return m.list.Leave(timeout)
}

// AnnounceLeaving publishes this node's leaving mark: peers take it out of
// their rings at once while it stays in the cluster to drain. Leave follows.
func (m *Membership) AnnounceLeaving(timeout time.Duration) {
	m.leavingSelf.Store(true)
	if err := m.list.UpdateNode(timeout); err != nil {
		m.log.Warn("could not announce leaving", "err", err)
	}
}

// Shutdown stops gossip without a leave message (peers will detect the
// node as dead) and stops the join loop. Safe to call more than once.
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
func (delegate) NotifyMsg([]byte)                {}
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (delegate) LocalState(bool) []byte          { return nil }
func (delegate) MergeRemoteState([]byte, bool)   {}

// events receives memberlist callbacks. They run under memberlist's node
// lock, the only time its *Node may be read safely: copy, record, signal.
type events struct{ m *Membership }

func (e events) record(n *memberlist.Node, departed bool) {
	mem, md := toMember(n)
	e.m.mu.Lock()
	switch {
	case !departed:
		// A node that announced its leave is out of the ring at once, so
		// peers stop routing to it while it drains.
		e.m.leaving[n.Name] = md.Leaving
		if md.Leaving {
			mem.State = StateLeft
		}
	case e.m.leaving[n.Name]:
		mem.State = StateLeft
	default:
		mem.State = StateDead
	}
	e.m.nodes[n.Name] = mem
	e.m.mu.Unlock()
	if !departed && n.Name != e.m.cfg.Name {
		// Another node reached us: joined, even if it was its join, not ours.
		e.m.markJoined()
	}
	e.m.signal()
}

func (e events) NotifyJoin(n *memberlist.Node)   { e.record(n, false) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.record(n, false) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.record(n, true) }

// slogWriter forwards memberlist's log lines ("[WARN] memberlist: ...") to
// slog at the matching level.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[ERR]": slog.LevelError, "[ERROR]": slog.LevelError, "[WARN]": slog.LevelWarn, "[INFO]": slog.LevelInfo} {
		if strings.HasPrefix(line, prefix) {
			level = l
			line = strings.TrimSpace(strings.TrimPrefix(line, prefix))
			break
		}
	}
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

// pings carries the caller's payload on probe acks.
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
