package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The three namespaces every run exercises, all on PostgreSQL's generic
// table and all read-through: write-through, write-behind, and write-aside
// (the application writes the database itself and then calls Delete).
const (
	NSWriteThrough = "wt"
	NSWriteBehind  = "wb"
	NSReadThrough  = "rt"
)

// Namespaces lists them in table order.
var Namespaces = []string{NSWriteThrough, NSWriteBehind, NSReadThrough}

// clusterConfig is the ringcache.yaml of every node; %q is the DSN. TTLs
// are long so that a stale entry stays stale long enough to be seen.
const clusterConfig = `backends:
  main: {driver: postgres, dsn: %q, max_conns: 8}
namespaces:
  wt: {backend: main, read: through, write: through, ttl: 1h, negative_ttl: 1h}
  wb: {backend: main, read: through, write: behind, ttl: 1h, negative_ttl: 1h, write_behind: {flush_interval: 200ms}}
  rt: {backend: main, read: through, write: aside, ttl: 1h, negative_ttl: 1h}
`

// ClusterConfig configures StartCluster.
type ClusterConfig struct {
	Nodes     int      // default 3
	Binary    string   // path of ringcached; required
	Dir       string   // data directories and logs; required
	NodeFlags []string // more flags for every node, after nodeArgs's
	Logger    *slog.Logger
}

// Cluster is a lab network, PostgreSQL on its own link, and ringcached
// nodes each in its own namespace on both networks.
type Cluster struct {
	Net   *Network
	PG    *Postgres
	Nodes []*Node
	log   *slog.Logger
	admin map[string]*grpc.ClientConn // by node name, dialled from inside the node's namespace
}

// StartCluster builds the lab and starts every node, and returns once the
// cluster has converged. On error everything started is torn down.
func StartCluster(ctx context.Context, cfg ClusterConfig) (c *Cluster, err error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.Binary == "" || cfg.Dir == "" {
		return nil, errors.New("chaos: ClusterConfig needs Binary and Dir")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c = &Cluster{log: log, admin: map[string]*grpc.ClientConn{}}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Net, err = NewNetwork(log); err != nil {
		return nil, err
	}
	pgHost, err := c.Net.AddHost("pg", false, true)
	if err != nil {
		return nil, err
	}
	if c.PG, err = StartPostgres(ctx, pgHost, log); err != nil {
		return nil, err
	}
	config := filepath.Join(cfg.Dir, "ringcache.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, clusterConfig, c.PG.DSN()), 0o644); err != nil {
		return nil, err
	}
	var join []string
	for i := range cfg.Nodes {
		name := fmt.Sprintf("n%d", i+1)
		h, err := c.Net.AddHost(name, true, true)
		if err != nil {
			return nil, err
		}
		join = append(join, netip.AddrPortFrom(h.PeerIP, gossipPort).String())
		c.Nodes = append(c.Nodes, &Node{Name: name, Host: h, DataDir: filepath.Join(cfg.Dir, name), Config: config,
			bin: cfg.Binary, extra: cfg.NodeFlags, dir: cfg.Dir})
	}
	for _, n := range c.Nodes {
		n.join = join
		cc, err := grpc.NewClient("passthrough:///"+n.GRPCAddr(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(n.Host.Dial),
			grpc.WithConnectParams(fastReconnect))
		if err != nil {
			return nil, err
		}
		c.admin[n.Name] = cc
		if err := n.Start(); err != nil {
			return nil, err
		}
	}
	if _, err := c.WaitConverged(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// fastReconnect retries a broken connection every 50 ms at first (gRPC's
// default first backoff is 1 s), so a restarted node is reached at once.
var fastReconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: time.Second,
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Close stops every node and PostgreSQL and removes the lab network.
func (c *Cluster) Close() {
	for _, cc := range c.admin {
		cc.Close()
	}
	for _, n := range c.Nodes {
		n.destroy()
	}
	if c.PG != nil {
		c.PG.Stop()
	}
	if c.Net != nil {
		if err := c.Net.Close(); err != nil {
			c.log.Warn("chaos network cleanup", "err", err)
		}
	}
}

// view is what one node says about the cluster.
type view struct {
	serving bool
	alive   []string // member names gossip calls alive
	ring    []string // ring member names
	owners  []string // partition owners
	version uint64   // of the partition table
}

// viewOf asks node n, from inside its namespace, for its health, members
// and ring.
func (c *Cluster) viewOf(ctx context.Context, n *Node) (view, error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	cc := c.admin[n.Name]
	var v view
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return v, fmt.Errorf("%s: health: %w", n.Name, err)
	}
	v.serving = h.Status == healthpb.HealthCheckResponse_SERVING
	admin := pb.NewAdminClient(cc)
	ms, err := admin.Members(ctx, &pb.MembersRequest{})
	if err != nil {
		return v, fmt.Errorf("%s: members: %w", n.Name, err)
	}
	for _, m := range ms.Members {
		if m.State == pb.MemberState_MEMBER_STATE_ALIVE {
			v.alive = append(v.alive, m.Name)
		}
	}
	r, err := admin.Ring(ctx, &pb.RingRequest{})
	if err != nil {
		return v, fmt.Errorf("%s: ring: %w", n.Name, err)
	}
	for _, m := range r.Members {
		v.ring = append(v.ring, m.Name)
	}
	slices.Sort(v.alive)
	slices.Sort(v.ring)
	v.owners, v.version = r.PartitionOwners, r.Version
	return v, nil
}

// converged reports nil once every node serves, calls every node alive,
// and routes by the same table, of every node. The same owners are not
// enough: a node woken from a pause past its detection routes by its old
// table until the one that takes it back arrives, serving what it cached
// before the pause, and that table often gives it back exactly the
// partitions it had.
func (c *Cluster) converged(ctx context.Context) error {
	var first []string
	var version uint64
	for _, n := range c.Nodes {
		if exited, err := n.Exited(); exited {
			return fmt.Errorf("%s exited: %v", n.Name, err)
		}
		v, err := c.viewOf(ctx, n)
		if err != nil {
			return err
		}
		switch {
		case !v.serving:
			return fmt.Errorf("%s is not serving", n.Name)
		case len(v.alive) != len(c.Nodes):
			return fmt.Errorf("%s calls %v alive", n.Name, v.alive)
		case len(v.ring) != len(c.Nodes):
			return fmt.Errorf("%s has %v in its ring", n.Name, v.ring)
		case first == nil:
			first, version = v.owners, v.version
		case !slices.Equal(first, v.owners):
			return fmt.Errorf("%s assigns partitions differently from %s", n.Name, c.Nodes[0].Name)
		case v.version != version:
			return fmt.Errorf("%s routes by table %x, %s by %x", n.Name, v.version, c.Nodes[0].Name, version)
		}
	}
	return nil
}

// stableFor is how long the converged state must hold before it counts: a
// node woken from a pause, for one, may suspect its peers once more a
// moment after every ring agreed.
const stableFor = time.Second

// WaitConverged polls until the cluster has converged and stayed so for
// stableFor, and returns how long it took until the stable stretch began,
// or an error after timeout.
func (c *Cluster) WaitConverged(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	var since time.Time // start of the current converged stretch
	_, err := poll(ctx, timeout, "the cluster did not converge", func() error {
		if err := c.converged(ctx); err != nil {
			since = time.Time{}
			return err
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) < stableFor {
			return errors.New("converged, not yet for long")
		}
		return nil
	})
	return since.Sub(start), err
}

// excluded reports nil once every node in observers has victim out of its
// ring (for the victim itself: everyone else out of its ring).
func (c *Cluster) excluded(ctx context.Context, victim *Node, observers []*Node) error {
	for _, n := range observers {
		v, err := c.viewOf(ctx, n)
		if err != nil {
			return err
		}
		if n == victim {
			if len(v.ring) != 1 {
				return fmt.Errorf("%s still has %v in its ring", n.Name, v.ring)
			}
		} else if slices.Contains(v.ring, victim.Name) {
			return fmt.Errorf("%s still has %s in its ring", n.Name, victim.Name)
		}
	}
	return nil
}

// owner asks node n which node owns key of namespace ns.
func (c *Cluster) owner(ctx context.Context, n *Node, ns, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := pb.NewAdminClient(c.admin[n.Name]).Locate(ctx, &pb.LocateRequest{Namespace: ns, Key: key})
	if err != nil {
		return "", fmt.Errorf("locate on %s: %w", n.Name, err)
	}
	return r.Owner, nil
}

// DrainJournals asks every node to flush its write-behind journal and
// polls until none holds a pending write; it returns the dead letters.
func (c *Cluster) DrainJournals(ctx context.Context, timeout time.Duration) (deadLetters uint64, err error) {
	for _, n := range c.Nodes {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := pb.NewAdminClient(c.admin[n.Name]).FlushJournal(fctx, &pb.FlushJournalRequest{})
		cancel()
		if err != nil {
			c.log.Warn("flush journal", "node", n.Name, "err", err)
		}
	}
	_, err = poll(ctx, timeout, "the journals did not drain", func() error {
		deadLetters = 0
		for _, n := range c.Nodes {
			jctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			j, err := pb.NewAdminClient(c.admin[n.Name]).Journal(jctx, &pb.JournalRequest{})
			cancel()
			if err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
			if j.Pending != 0 {
				return fmt.Errorf("%s: %d writes pending (%d flush failures)", n.Name, j.Pending, j.FlushFailures)
			}
			deadLetters += j.DeadLetters
		}
		return nil
	})
	return deadLetters, err
}

// poll calls cond every 50 ms until it returns nil, and returns how long
// that took; after timeout it returns what with cond's last error.
func poll(ctx context.Context, timeout time.Duration, what string, cond func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("%s within %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}
