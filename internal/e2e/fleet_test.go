package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/internal/journal"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// fleet is a cluster whose nodes are started, killed and restarted one by
// one: each node keeps its name, ports and data dir for the whole test, may
// have a config of its own, and every start writes a new log
// (<name>.<start>.log), all of them shown when the test fails.
type fleet struct {
	*cluster
	all    []*proc // every node of the test, started or not
	gossip []string
	starts map[string]int
}

// newFleet picks loopback ports for the named nodes and starts none.
func newFleet(t *testing.T, names ...string) *fleet {
	t.Helper()
	grpcPorts, gossipPorts, err := pickPorts(len(names))
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{cluster: &cluster{t: t, dir: t.TempDir()}, starts: map[string]int{}}
	t.Cleanup(f.cleanup)
	for i, name := range names {
		p := &proc{
			name:       name,
			grpcAddr:   "127.0.0.1:" + strconv.Itoa(grpcPorts[i]),
			gossipAddr: "127.0.0.1:" + strconv.Itoa(gossipPorts[i]),
		}
		f.all = append(f.all, p)
		f.gossip = append(f.gossip, p.gossipAddr)
	}
	return f
}

// writeConfig writes a ringcache.yaml under the fleet's directory and
// returns its path.
func (f *fleet) writeConfig(name, body string) string {
	f.t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return path
}

// launch starts each of ps (none may be running) with config, joining the
// gossip addresses in join (every node of the fleet when nil). It does not
// wait for anything: see waitUp.
func (f *fleet) launch(config string, join []string, ps ...*proc) {
	f.t.Helper()
	if join == nil {
		join = f.gossip
	}
	for _, p := range ps {
		if p.done != nil && !p.exited() {
			f.t.Fatalf("launch %s: still running", p.name)
		}
		f.starts[p.name]++
		p.config = config
		p.logPath = filepath.Join(f.dir, fmt.Sprintf("%s.%d.log", p.name, f.starts[p.name]))
		if !slices.Contains(f.nodes, p) {
			f.nodes = append(f.nodes, p) // cleanup kills and shows the logs of f.nodes
		}
		if err := f.start(p, "--join", strings.Join(join, ",")); err != nil {
			f.t.Fatalf("start %s: %v", p.name, err)
		}
	}
}

// waitUp polls until each of ps lists n alive members, has n members in its
// ring and reports SERVING.
func (f *fleet) waitUp(n int, ps ...*proc) {
	f.t.Helper()
	f.waitUpWithin(formTimeout, n, ps...)
}

// waitSurvivors is waitUp after a kill -9: the survivors of ps detect the
// death within detectTimeout.
func (f *fleet) waitSurvivors(n int, ps ...*proc) {
	f.t.Helper()
	f.waitUpWithin(detectTimeout, n, ps...)
}

func (f *fleet) waitUpWithin(timeout time.Duration, n int, ps ...*proc) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var problem error
		for _, p := range ps {
			if p.exited() {
				f.t.Fatalf("%s exited during startup: %v\n%s", p.name, p.waitErr, p.log())
			}
			if problem == nil {
				problem = f.checkFormed(p, n)
			}
		}
		if problem == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("cluster of %d not formed within %s: %v", n, timeout, problem)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill9 sends SIGKILL to every one of ps first, then waits for each to be
// gone: a crash of all of them at once.
func kill9(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatalf("kill -9 %s: %v", p.name, err)
		}
	}
	for _, p := range ps {
		<-p.done
	}
}

// terminate sends SIGTERM to every one of ps, waits for each to exit and
// fails the test unless each exits 0 within timeout. It returns how long
// each took.
func terminate(t *testing.T, timeout time.Duration, ps ...*proc) map[string]time.Duration {
	t.Helper()
	start := time.Now()
	for _, p := range ps {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %s: %v", p.name, err)
		}
	}
	took := map[string]time.Duration{}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, p := range ps {
		select {
		case <-p.done:
		case <-deadline.C:
			t.Fatalf("%s still running %s after SIGTERM", p.name, timeout)
		}
		took[p.name] = time.Since(start).Round(time.Millisecond)
		if p.waitErr != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want status 0\n%s", p.name, p.waitErr, p.log())
		}
	}
	return took
}

// nodeConn is a gRPC connection to one node with its Cache and Admin clients.
type nodeConn struct {
	name  string
	cc    *grpc.ClientConn
	cache pb.CacheClient
	admin pb.AdminClient
}

// dial connects to each of ps, retrying a connection every 50 ms at first
// (gRPC's default first backoff is 1 s), so a node that is still starting is
// reached as soon as it listens.
func dial(t *testing.T, ps ...*proc) []*nodeConn {
	t.Helper()
	var out []*nodeConn
	for _, p := range ps {
		cc, err := grpc.NewClient("passthrough:///"+p.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 2 * time.Second,
			}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		out = append(out, &nodeConn{name: p.name, cc: cc, cache: pb.NewCacheClient(cc), admin: pb.NewAdminClient(cc)})
	}
	return out
}

func closeAll(conns []*nodeConn) {
	for _, c := range conns {
		c.cc.Close()
	}
}

// journal asks a node for its write-behind journal.
func (c *nodeConn) journal() (*pb.JournalResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.admin.Journal(ctx, &pb.JournalRequest{})
}

// waitJournalsEmpty polls the Admin Journal RPC of every node until none
// holds a pending write, and returns the last answers.
func waitJournalsEmpty(t *testing.T, timeout time.Duration, conns []*nodeConn) []*pb.JournalResponse {
	t.Helper()
	out := make([]*pb.JournalResponse, len(conns))
	eventually(t, timeout, "every journal flushed", func() error {
		for i, c := range conns {
			j, err := c.journal()
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if !j.Enabled {
				return fmt.Errorf("%s reports no write-behind journal", c.name)
			}
			if j.Pending != 0 {
				return fmt.Errorf("%s: %d writes pending (%d flush failures)", c.name, j.Pending, j.FlushFailures)
			}
			out[i] = j
		}
		return nil
	})
	return out
}

// dbRow is one row of the generic table.
type dbRow struct {
	value   []byte // nil: a tombstone
	version int64
}

// kvRows returns the rows of ringcache_kv in namespace ns whose key starts
// with prefix, connecting afresh (the server may have been restarted).
func kvRows(t *testing.T, dsn, ns, prefix string) map[string]dbRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT key, value, version FROM ringcache_kv WHERE namespace = $1 AND starts_with(key, $2)`, ns, prefix)
	if err != nil {
		t.Fatalf("query ringcache_kv: %v", err)
	}
	out := map[string]dbRow{}
	for rows.Next() {
		var (
			k string
			r dbRow
		)
		if err := rows.Scan(&k, &r.value, &r.version); err != nil {
			t.Fatal(err)
		}
		out[k] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query ringcache_kv: %v", err)
	}
	return out
}

// pgExec runs one statement on dsn.
func pgExec(t *testing.T, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pgRows runs a query of two text columns on dsn and calls fn per row.
func pgRows(t *testing.T, dsn, sql string, fn func(a, b string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		fn(a, b)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// journalOnDisk opens the journal file of a stopped node (<data-dir>/journal.db)
// and returns its pending writes and dead letters.
func (f *fleet) journalOnDisk(p *proc) (pending, dead int) {
	f.t.Helper()
	if !p.exited() {
		f.t.Fatalf("journalOnDisk %s: the node is running", p.name)
	}
	j, err := journal.Open(filepath.Join(f.dir, p.name, "journal.db"), journal.Options{})
	if err != nil {
		f.t.Fatalf("open the journal of %s: %v", p.name, err)
	}
	defer j.Close()
	st, err := j.Stats()
	if err != nil {
		f.t.Fatalf("journal of %s: %v", p.name, err)
	}
	return st.Pending, st.DeadLetters
}

// journals snapshots the Admin Journal RPC of every node: pending writes
// and flush failures, for the logs. Errors are reported, not fatal.
func journals(conns []*nodeConn) string {
	var parts []string
	for _, c := range conns {
		j, err := c.journal()
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d pending/%d flush failures", c.name, j.Pending, j.FlushFailures))
	}
	return strings.Join(parts, ", ")
}
