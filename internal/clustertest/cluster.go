// Package clustertest starts ringcache clusters inside one test process:
// real nodes with real gRPC and gossip on loopback, fast failure-detection
// timers, and a Network that cuts links. Wait for conditions with Eventually,
// never with a fixed sleep.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Namespaces served by a default cluster.
const (
	// NSUsers is read-through from Cluster.DB.
	NSUsers = "users"
	// NSCache is a pure cache (read and write aside).
	NSCache = "cache"
	// NSOrders is read-through and write-behind on Cluster.DB; served only
	// with Options.WriteBehind.
	NSOrders = "orders"
)

// Options tune a cluster.
type Options struct {
	// Namespaces overrides the default two namespaces.
	Namespaces []node.NamespaceSpec
	// Configure, when set, edits each node's config before it starts.
	Configure func(i int, cfg *node.Config)
	// WriteBehind adds the NSOrders namespace and gives every node a
	// journal in the test's temp dir.
	WriteBehind bool
	// FlushInterval of the nodes' flushers; default 10 ms.
	FlushInterval time.Duration
	// LogLevel is the least level of the nodes' records written to the
	// test's log (each line prefixed with the node's name); default Debug.
	LogLevel slog.Leveler
}

// Cluster is a set of in-process nodes.
type Cluster struct {
	t     testing.TB
	opts  Options
	logs  *logSink
	DB    *FakeDB
	Net   *Network
	mu    sync.Mutex
	nodes []*node.Node
	down  map[int]bool
	conns map[int]*grpc.ClientConn
}

// FastGossip sets memberlist timers for tests: a dead node is detected in
// one to two seconds, yet a node starved of CPU for most of a second
// (-race on a busy two-core machine running other suites) is not declared
// dead: a suspect has 0.8 s to 1.6 s to refute. With less, members of
// healthy clusters left tables for a moment under load, and a key's load
// ran twice (the merge that follows a return detaches loads).
func FastGossip(c *memberlist.Config) {
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	c.SuspicionMult = 4
	c.SuspicionMaxTimeoutMult = 2
	c.TCPTimeout = 500 * time.Millisecond
	c.DeadNodeReclaimTime = 100 * time.Millisecond
	c.GossipToTheDeadTime = 2 * time.Second
}

// Start starts n nodes joined into one cluster and waits until every node's
// ring has all n members. Every node logs to t (see Logger).
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.LogLevel == nil {
		opts.LogLevel = slog.LevelDebug
	}
	c := &Cluster{t: t, opts: opts, DB: NewFakeDB(), Net: newNetwork(), down: map[int]bool{}, conns: map[int]*grpc.ClientConn{}}
	c.logs = newLogSink(t) // before Shutdown's cleanup: the nodes log until they are gone
	t.Cleanup(c.Shutdown)
	for i := range n {
		c.AddNode()
		_ = i
	}
	c.WaitConverged()
	return c
}

// NodeName returns the name of node i.
func NodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

func (c *Cluster) namespaces() []node.NamespaceSpec {
	if c.opts.Namespaces != nil {
		return c.opts.Namespaces
	}
	specs := []node.NamespaceSpec{
		{Policy: strategy.Policy{Name: NSUsers, Read: strategy.ReadThrough, TTL: time.Minute, NegativeTTL: time.Second, MaxKeyBytes: 256, MaxValueBytes: 1 << 16}, Loader: c.DB},
		{Policy: strategy.Policy{Name: NSCache, TTL: time.Minute, MaxKeyBytes: 256, MaxValueBytes: 1 << 16}},
	}
	if c.opts.WriteBehind {
		specs = append(specs, node.NamespaceSpec{
			Policy: strategy.Policy{Name: NSOrders, Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Minute, MaxKeyBytes: 256, MaxValueBytes: 1 << 16},
			Loader: c.DB, Writer: c.DB,
		})
	}
	return specs
}

// AddNode starts one more node that joins the first and returns its index.
func (c *Cluster) AddNode() int {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.nodes)
	var join []string
	for j, n := range c.nodes {
		if !c.down[j] {
			join = append(join, n.GossipAddr())
		}
	}
	c.mu.Unlock()
	name := NodeName(i)
	tr, err := newTransport(c.Net, name)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := node.Config{
		Name:            name,
		GRPCAddr:        "127.0.0.1:0",
		GossipAddr:      "127.0.0.1:0",
		Join:            join,
		Namespaces:      c.namespaces(),
		MaxMemory:       64 << 20,
		GossipTransport: tr,
		TuneGossip:      FastGossip,
		PeerDialer:      c.Net.dialer(name),
		LeaveTimeout:    time.Second,
		Logger:          c.logs.logger(name, c.opts.LogLevel),
	}
	if c.opts.WriteBehind {
		cfg.Journal = node.JournalConfig{
			Path:          filepath.Join(c.t.TempDir(), name+"-journal.db"),
			FlushInterval: c.opts.FlushInterval, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		}
		if cfg.Journal.FlushInterval == 0 {
			cfg.Journal.FlushInterval = 10 * time.Millisecond
		}
	}
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		tr.Shutdown()
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.Net.register(name, n.GRPCAddr(), n.GossipAddr(), tr.addr())
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return i
}

// Node returns node i.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Up returns the indexes of running nodes.
func (c *Cluster) Up() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var up []int
	for i := range c.nodes {
		if !c.down[i] {
			up = append(up, i)
		}
	}
	return up
}

// Conn returns a client connection to node i.
func (c *Cluster) Conn(i int) *grpc.ClientConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.conns[i]; ok {
		return cc
	}
	cc, err := grpc.NewClient("passthrough:///"+c.nodes[i].GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.t.Fatal(err)
	}
	c.conns[i] = cc
	return cc
}

// Cache returns a Cache client for node i.
func (c *Cluster) Cache(i int) pb.CacheClient { return pb.NewCacheClient(c.Conn(i)) }

// Admin returns an Admin client for node i.
func (c *Cluster) Admin(i int) pb.AdminClient { return pb.NewAdminClient(c.Conn(i)) }

// Stop stops node i gracefully (it leaves the cluster).
func (c *Cluster) Stop(i int) {
	c.markDown(i)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Node(i).Close(ctx); err != nil {
		c.t.Logf("stop %s: %v", NodeName(i), err)
	}
}

// Kill stops node i abruptly, as a crash.
func (c *Cluster) Kill(i int) {
	c.markDown(i)
	c.Node(i).Kill()
}

func (c *Cluster) markDown(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down[i] = true
	if cc, ok := c.conns[i]; ok {
		cc.Close()
		delete(c.conns, i)
	}
}

// Isolate cuts node i off from every other node.
func (c *Cluster) Isolate(i int) {
	c.mu.Lock()
	n := len(c.nodes)
	c.mu.Unlock()
	for j := range n {
		if j != i {
			c.Net.Cut(NodeName(i), NodeName(j))
		}
	}
}

// WaitConverged waits until every running node's ring holds exactly the
// running nodes, no node is still settling partitions it took over (a
// write before that could be dropped by the hand-off fence), and each
// knows from gossip that the others route by that table (until then its
// Redis door forwards their keys rather than answer MOVED).
func (c *Cluster) WaitConverged() {
	c.t.Helper()
	up := c.Up()
	want := make([]string, len(up))
	for k, i := range up {
		want[k] = NodeName(i)
	}
	slices.Sort(want) // as rings list members: n10 before n2
	c.WaitRing(up, want)
	Eventually(c.t, 10*time.Second, func() error {
		for _, i := range up {
			if c.Node(i).Settling() {
				return fmt.Errorf("%s is still settling partitions it took over", NodeName(i))
			}
		}
		return nil
	})
	Eventually(c.t, 10*time.Second, func() error {
		for _, i := range up {
			version := c.Node(i).Ring().Version()
			for _, m := range c.Node(i).Members() {
				if slices.Contains(want, m.Name) && m.TableVersion < version {
					return fmt.Errorf("%s sees %s routing by table %d, not yet %d", NodeName(i), m.Name, m.TableVersion, version)
				}
			}
		}
		return nil
	})
}

// WaitRing waits until each node in nodes has a ring of exactly members
// (sorted by name), and all route by the same partition table.
func (c *Cluster) WaitRing(nodes []int, members []string) {
	c.t.Helper()
	c.WaitRingWithin(10*time.Second, nodes, members)
}

// WaitRingWithin is WaitRing with a timeout other than 10 s, for large
// clusters.
func (c *Cluster) WaitRingWithin(timeout time.Duration, nodes []int, members []string) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error { return c.RingsAgree(nodes, members) })
}

// RingsAgree returns nil when each node in nodes is ready with a ring of
// exactly members and all route by the same partition table, else what
// differs.
func (c *Cluster) RingsAgree(nodes []int, members []string) error {
	// One partition table: rings of the same members may still differ
	// until the coordinator's table has reached every node.
	version, from := uint64(0), -1
	for _, i := range nodes {
		var got []string
		if r := c.Node(i).Ring(); r != nil {
			if from >= 0 && r.Version() != version {
				return fmt.Errorf("%s routes by table %d, %s by %d", NodeName(from), version, NodeName(i), r.Version())
			}
			version, from = r.Version(), i
			for _, m := range r.Members() {
				got = append(got, m.Name)
			}
		}
		if !slices.Equal(got, members) {
			return fmt.Errorf("%s ring has %v, want %v", NodeName(i), got, members)
		}
		if err := c.Node(i).NotReady(); err != nil {
			return fmt.Errorf("%s: %w", NodeName(i), err)
		}
	}
	return nil
}

// Shutdown stops every running node. Start registers it with t.Cleanup.
func (c *Cluster) Shutdown() {
	for _, i := range c.Up() {
		c.Kill(i)
	}
}

// Eventually polls cond every 10 ms until it returns nil, failing the test
// with cond's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		<-tick.C
	}
}
