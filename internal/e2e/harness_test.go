package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	// formTimeout bounds the wait for a cluster to form; memberlist's join
	// retry interval is 2 s, so a slow first join still fits comfortably.
	formTimeout = 20 * time.Second
	// detectTimeout bounds the wait for the survivors of a kill -9 to take
	// the dead node out of their rings. It usually takes 5 s (the local
	// preset's 1 s probes and 3 s suspicion). But in a cluster of three only
	// one other member can confirm a suspicion, and memberlist drops a
	// confirmation (or a death notice) carrying an older incarnation of the
	// suspect than its own; a member that rejoined seconds before held one
	// while every node re-advertised its metadata, bumping its incarnation,
	// on each table install (table versions now travel in messages of
	// their own, but do so again while a node of that version is alive).
	// Then the suspicion runs to its maximum, SuspicionMaxTimeoutMult (6)
	// × 3 s = 18 s after the first failed probe, and until then the
	// survivors disagree on who coordinates tables. CI ran out of 20 s
	// twice that way.
	detectTimeout = 45 * time.Second
	// ctlTimeout bounds one ringcachectl run.
	ctlTimeout = 15 * time.Second
	// seededRows is how many demo users the database holds.
	seededRows = 100
)

// testConfig is the ringcache.yaml of the test clusters; %s is the SQLite
// file. users is read-through with a small key limit, sessions a pure cache
// with the default limits (1024-byte keys, 1 MiB values).
const testConfig = `
backends:
  local: {driver: sqlite, path: %s}
namespaces:
  users:
    read: through
    write: aside
    ttl: 5m
    ttl_jitter: 0.1
    negative_ttl: 30s
    max_key_bytes: 64
    load_sql: SELECT profile FROM users WHERE id = $1
  sessions:
    read: aside
    write: aside
    ttl: 30m
`

// profile is the JSON demoseed stores for user id.
func profile(id int) string {
	plans := []string{"pro", "free", "team"}
	return fmt.Sprintf(`{"id":"%d","name":"user-%d","plan":"%s"}`, id, id, plans[id%3])
}

// proc is one ringcached process.
type proc struct {
	name       string
	grpcAddr   string
	gossipAddr string
	logPath    string
	config     string // when set, overrides the cluster's config for this node
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process has exited
	waitErr    error         // set before done is closed
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// cluster is a set of ringcached processes sharing one config and database.
type cluster struct {
	t      *testing.T
	dir    string
	config string
	nodes  []*proc
	// nodeFlags are more flags for every node (TLS, audit), ctlFlags for
	// every ringcachectl run of the harness, and creds dial the nodes'
	// health service: all empty for a plaintext cluster.
	nodeFlags []string
	ctlFlags  []string
	creds     credentials.TransportCredentials
	// perNode returns more flags for the node called name (its own
	// certificate); nil: none.
	perNode func(name string) []string
}

// startCluster seeds a database, writes the config and starts n nodes on
// free loopback ports, all with the same --join list naming every node. It
// returns once every node lists n alive members and has n members in its
// ring. A port taken between picking and binding restarts the cluster on new
// ports.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := newCluster(t)
	c.form(n, "")
	return c
}

// newCluster makes the cluster's directory; form starts its nodes.
func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, dir: t.TempDir()}
}

// form seeds the database, writes the config (testConfig, then extraConfig)
// and starts n nodes; see startCluster.
func (c *cluster) form(n int, extraConfig string) {
	t := c.t
	t.Helper()
	db := filepath.Join(c.dir, "app.db")
	if out, err := exec.Command(demoseedBin, "-db", db, "-rows", strconv.Itoa(seededRows)).CombinedOutput(); err != nil {
		t.Fatalf("demoseed: %v\n%s", err, out)
	}
	c.config = filepath.Join(c.dir, "ringcache.yaml")
	if err := os.WriteFile(c.config, fmt.Appendf(nil, testConfig+extraConfig, db), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)

	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := c.tryStart(n, attempt)
		if err == nil {
			break
		}
		c.killAll()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("start cluster (attempt %d): %v", attempt, err)
		}
		t.Logf("attempt %d: %v; retrying on new ports", attempt, err)
	}
	t.Logf("%d-node cluster formed in %s", n, time.Since(start).Round(time.Millisecond))
}

var errPortTaken = errors.New("a picked port was taken before the node bound it")

func (c *cluster) tryStart(n, attempt int) error {
	grpcPorts, gossipPorts, err := pickPorts(n)
	if err != nil {
		return err
	}
	join := make([]string, n)
	for i := range n {
		join[i] = "127.0.0.1:" + strconv.Itoa(gossipPorts[i])
	}
	c.nodes = nil
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		p := &proc{
			name:       name,
			grpcAddr:   "127.0.0.1:" + strconv.Itoa(grpcPorts[i]),
			gossipAddr: join[i],
			logPath:    filepath.Join(c.dir, fmt.Sprintf("%s.%d.log", name, attempt)),
		}
		if err := c.start(p, "--join", strings.Join(join, ",")); err != nil {
			return err
		}
		c.nodes = append(c.nodes, p)
	}
	return c.waitFormed(n)
}

// start launches p with the cluster's config (or p.config when set); extra
// are more flags.
func (c *cluster) start(p *proc, extra ...string) error {
	logf, err := os.Create(p.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	config := c.config
	if p.config != "" {
		config = p.config
	}
	if c.perNode != nil {
		extra = append(c.perNode(p.name), extra...)
	}
	args := append([]string{
		"--name", p.name,
		"--grpc-addr", p.grpcAddr,
		"--gossip-addr", p.gossipAddr,
		"--gossip-preset", "local",
		"--log-level", cmp.Or(os.Getenv("RINGCACHE_E2E_LOG_LEVEL"), "info"),
		"--data-dir", filepath.Join(c.dir, p.name),
		"--config", config,
	}, append(append([]string(nil), c.nodeFlags...), extra...)...)
	p.cmd = exec.Command(ringcachedBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.done = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// waitFormed polls ringcachectl on every node until each lists n alive
// members and has n members in its ring.
func (c *cluster) waitFormed(n int) error {
	deadline := time.Now().Add(formTimeout)
	for {
		var problem error
		for _, p := range c.nodes {
			if p.exited() {
				if strings.Contains(p.log(), "address already in use") {
					return fmt.Errorf("%s: %w", p.name, errPortTaken)
				}
				return fmt.Errorf("%s exited during startup: %v", p.name, p.waitErr)
			}
			if problem == nil {
				problem = c.checkFormed(p, n)
			}
		}
		if problem == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not formed within %s: %v", formTimeout, problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) checkFormed(p *proc, n int) error {
	var m membersJSON
	if _, err := c.ctlJSONErr(p.grpcAddr, &m, "members"); err != nil {
		return err
	}
	if alive := m.count("alive"); alive != n {
		return fmt.Errorf("%s lists %d alive members, want %d: %+v", p.name, alive, n, m.Members)
	}
	var r ringJSON
	if _, err := c.ctlJSONErr(p.grpcAddr, &r, "ring"); err != nil {
		return err
	}
	if len(r.Members) != n {
		return fmt.Errorf("ring of %s has %d members, want %d", p.name, len(r.Members), n)
	}
	return servingWith(p.grpcAddr, c.creds)
}

// serving asks the node's grpc.health.v1 service whether it is ready.
func serving(addr string) error { return servingWith(addr, nil) }

// servingWith is serving over creds (nil: plaintext).
func servingWith(addr string, creds credentials.TransportCredentials) error {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("health of %s: %w", addr, err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s reports %v", addr, resp.Status)
	}
	return nil
}

func (c *cluster) killAll() {
	for _, p := range c.nodes {
		if p.cmd != nil && p.cmd.Process != nil && !p.exited() {
			_ = p.cmd.Process.Kill()
		}
	}
	for _, p := range c.nodes {
		if p.done != nil {
			<-p.done
		}
	}
}

// cleanup kills every process still running and, when the test failed,
// logs every node's log.
func (c *cluster) cleanup() {
	c.killAll()
	if !c.t.Failed() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(c.dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		c.t.Logf("--- %s ---\n%s", filepath.Base(l), b)
	}
}

// node returns the process named name.
func (c *cluster) node(name string) *proc {
	c.t.Helper()
	for _, p := range c.nodes {
		if p.name == name {
			return p
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// ctlResult is one ringcachectl run.
type ctlResult struct {
	stdout, stderr string
	exitCode       int
}

// ctl runs ringcachectl --addr addr args..., feeding stdin when not nil. A
// non-zero exit is not an error; failing to run is.
func ctl(addr string, stdin []byte, args ...string) (ctlResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ringcachectlBin, append([]string{"--addr", addr}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	res := ctlResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		res.exitCode = exit.ExitCode()
	case err != nil:
		return res, fmt.Errorf("ringcachectl %s: %v (stderr %q)", strings.Join(args, " "), err, res.stderr)
	}
	return res, nil
}

// ctlJSONErr runs ringcachectl with -o json and decodes its output into v.
func (c *cluster) ctlJSONErr(addr string, v any, args ...string) (ctlResult, error) {
	res, err := ctl(addr, nil, append(append(append([]string(nil), c.ctlFlags...), args...), "-o", "json")...)
	if err != nil {
		return res, err
	}
	if res.exitCode != 0 {
		return res, fmt.Errorf("ringcachectl --addr %s %s: exit %d: %s", addr, strings.Join(args, " "), res.exitCode, res.stderr)
	}
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		return res, fmt.Errorf("ringcachectl %s: bad JSON %q: %v", strings.Join(args, " "), res.stdout, err)
	}
	return res, nil
}

// ctlJSON is ctlJSONErr that fails the test on error.
func (c *cluster) ctlJSON(addr string, v any, args ...string) {
	c.t.Helper()
	if _, err := c.ctlJSONErr(addr, v, args...); err != nil {
		c.t.Fatal(err)
	}
}

// eventually polls cond every 50 ms until it returns nil or timeout passes,
// then fails the test with cond's last error.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// JSON shapes of ringcachectl -o json: the CLI's public contract.

type membersJSON struct {
	Self    string `json:"self"`
	Members []struct {
		Name       string `json:"name"`
		GRPCAddr   string `json:"grpc_addr"`
		GossipAddr string `json:"gossip_addr"`
		State      string `json:"state"`
	} `json:"members"`
}

func (m membersJSON) count(state string) int {
	n := 0
	for _, x := range m.Members {
		if x.State == state {
			n++
		}
	}
	return n
}

func (m membersJSON) state(name string) string {
	for _, x := range m.Members {
		if x.Name == name {
			return x.State
		}
	}
	return "(absent)"
}

type ringJSON struct {
	Version        uint64  `json:"version"`
	PartitionCount uint32  `json:"partition_count"`
	LoadFactor     float64 `json:"load_factor"`
	Members        []struct {
		Name         string  `json:"name"`
		GRPCAddr     string  `json:"grpc_addr"`
		Partitions   uint32  `json:"partitions"`
		SharePercent float64 `json:"share_percent"`
	} `json:"members"`
	PartitionOwners []string `json:"partition_owners"`
}

type locateJSON struct {
	Namespace     string `json:"namespace"`
	Key           string `json:"key"`
	Partition     uint32 `json:"partition"`
	Owner         string `json:"owner"`
	OwnerGRPCAddr string `json:"owner_grpc_addr"`
}

type getJSON struct {
	Found       bool    `json:"found"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
}

type okJSON struct {
	OK bool `json:"ok"`
}

type statsJSON struct {
	Node        string    `json:"node"`
	Namespaces  []nsStats `json:"namespaces"`
	Forwards    uint64    `json:"forwards"`
	ForwardedIn uint64    `json:"forwarded_in"`
}

type nsStats struct {
	Name         string `json:"name"`
	Gets         uint64 `json:"gets"`
	Hits         uint64 `json:"hits"`
	Misses       uint64 `json:"misses"`
	Loads        uint64 `json:"loads"`
	NegativeHits uint64 `json:"negative_hits"`
	Sets         uint64 `json:"sets"`
	Deletes      uint64 `json:"deletes"`
}

// nsOf returns the counters of namespace ns on node.
func nsOf(stats []statsJSON, node, ns string) (nsStats, bool) {
	for _, s := range stats {
		if s.Node != node {
			continue
		}
		for _, x := range s.Namespaces {
			if x.Name == ns {
				return x, true
			}
		}
	}
	return nsStats{}, false
}
