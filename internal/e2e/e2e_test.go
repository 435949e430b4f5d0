package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestBinaries_ThreeNodeClusterServesThroughCtl(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	want42 := profile(42)

	// Every node agrees on the owner of users/42.
	var owner locateJSON
	c.ctlJSON(c.nodes[0].grpcAddr, &owner, "locate", "users", "42")
	if owner.Owner == "" || owner.OwnerGRPCAddr != c.node(owner.Owner).grpcAddr {
		t.Fatalf("locate users 42 = %+v: owner or its address is wrong", owner)
	}
	for _, p := range c.nodes[1:] {
		var l locateJSON
		c.ctlJSON(p.grpcAddr, &l, "locate", "users", "42")
		if l != owner {
			t.Fatalf("locate users 42 on %s = %+v, on %s = %+v", p.name, l, c.nodes[0].name, owner)
		}
	}

	// A get through each node returns the seeded row, loaded once by the owner.
	for _, p := range c.nodes {
		var g getJSON
		c.ctlJSON(p.grpcAddr, &g, "get", "users", "42")
		if !g.Found || g.Value == nil || *g.Value != want42 {
			t.Fatalf("get users 42 via %s = %+v, want found %s", p.name, g, want42)
		}
	}
	var stats []statsJSON
	c.ctlJSON(c.nodes[2].grpcAddr, &stats, "stats")
	if len(stats) != 3 {
		t.Fatalf("stats lists %d nodes, want 3: %+v", len(stats), stats)
	}
	for _, p := range c.nodes {
		u, ok := nsOf(stats, p.name, "users")
		if !ok {
			t.Fatalf("stats has no users namespace for %s: %+v", p.name, stats)
		}
		wantU := nsStats{Name: "users"}
		if p.name == owner.Owner {
			wantU = nsStats{Name: "users", Gets: 3, Misses: 1, Hits: 2, Loads: 1}
		}
		if u != wantU {
			t.Errorf("users stats of %s after 3 gets of key 42 = %+v, want %+v (owner %s)", p.name, u, wantU, owner.Owner)
		}
	}
	// Later gets are hits: still one load.
	for _, p := range c.nodes {
		var g getJSON
		c.ctlJSON(p.grpcAddr, &g, "get", "users", "42")
	}
	c.ctlJSON(c.nodes[0].grpcAddr, &stats, "stats")
	if u, _ := nsOf(stats, owner.Owner, "users"); u.Loads != 1 || u.Hits != 5 || u.Gets != 6 {
		t.Errorf("users stats of owner %s after 6 gets = %+v, want 6 gets, 5 hits, 1 load", owner.Owner, u)
	}

	// The plain table output prints the raw value (what the make run banner shows).
	res, err := ctl(c.nodes[1].grpcAddr, nil, "get", "users", "42")
	if err != nil || res.exitCode != 0 || res.stdout != want42+"\n" {
		t.Errorf("get users 42 (table) = %+v, %v; want %q", res, err, want42+"\n")
	}

	// A missing row is not found, and the not-found answer is cached.
	for range 2 {
		var g getJSON
		c.ctlJSON(c.nodes[0].grpcAddr, &g, "get", "users", "100000")
		if g.Found || g.Value != nil {
			t.Fatalf("get users 100000 = %+v, want not found", g)
		}
	}
	var missOwner locateJSON
	c.ctlJSON(c.nodes[0].grpcAddr, &missOwner, "locate", "users", "100000")
	c.ctlJSON(c.nodes[0].grpcAddr, &stats, "stats")
	if u, _ := nsOf(stats, missOwner.Owner, "users"); u.NegativeHits != 1 {
		t.Errorf("users stats of %s after two gets of a missing row = %+v, want 1 negative hit", missOwner.Owner, u)
	}

	// The pure cache namespace: set, get and del through different nodes.
	for i, p := range c.nodes {
		key := fmt.Sprintf("sess-%d", i)
		var ok okJSON
		c.ctlJSON(p.grpcAddr, &ok, "set", "sessions", key, "hello-"+key, "--ttl", "10m")
		if !ok.OK {
			t.Fatalf("set sessions %s via %s: not ok", key, p.name)
		}
		for _, q := range c.nodes {
			var g getJSON
			c.ctlJSON(q.grpcAddr, &g, "get", "sessions", key)
			if !g.Found || g.Value == nil || *g.Value != "hello-"+key {
				t.Fatalf("get sessions %s via %s after set via %s = %+v", key, q.name, p.name, g)
			}
		}
		del := c.nodes[(i+1)%3]
		c.ctlJSON(del.grpcAddr, &ok, "del", "sessions", key)
		for _, q := range c.nodes {
			var g getJSON
			c.ctlJSON(q.grpcAddr, &g, "get", "sessions", key)
			if g.Found {
				t.Fatalf("get sessions %s via %s after del via %s = %+v, want not found", key, q.name, del.name, g)
			}
		}
	}
	// Binary values come back as base64 in JSON.
	if res, err := ctl(c.nodes[0].grpcAddr, []byte{0xff, 0x00, 0x01}, "set", "sessions", "bin", "-", "-o", "json"); err != nil || res.exitCode != 0 {
		t.Fatalf("set sessions bin - = %+v, %v", res, err)
	}
	var g getJSON
	c.ctlJSON(c.nodes[2].grpcAddr, &g, "get", "sessions", "bin")
	if !g.Found || g.Value != nil || g.ValueBase64 == nil || *g.ValueBase64 != "/wAB" {
		t.Errorf("get sessions bin = %+v, want value_base64 /wAB", g)
	}

	// Every node has the same ring: 3 members that own every partition.
	var first ringJSON
	for i, p := range c.nodes {
		var r ringJSON
		c.ctlJSON(p.grpcAddr, &r, "ring")
		if r.PartitionCount == 0 || len(r.PartitionOwners) != int(r.PartitionCount) {
			t.Fatalf("ring of %s: %d partitions, %d owners listed", p.name, r.PartitionCount, len(r.PartitionOwners))
		}
		var sum uint32
		var names []string
		for _, m := range r.Members {
			if m.Partitions == 0 {
				t.Errorf("ring of %s: member %s owns no partition", p.name, m.Name)
			}
			sum += m.Partitions
			names = append(names, m.Name)
		}
		if sum != r.PartitionCount {
			t.Errorf("ring of %s: member partitions sum to %d, want %d", p.name, sum, r.PartitionCount)
		}
		if !slices.Equal(names, []string{"n1", "n2", "n3"}) {
			t.Errorf("ring of %s has members %v, want n1 n2 n3", p.name, names)
		}
		if i == 0 {
			first = r
		} else if !slices.Equal(r.PartitionOwners, first.PartitionOwners) {
			t.Errorf("partition owners of %s differ from those of %s", p.name, c.nodes[0].name)
		}
	}
}

func TestBinaries_SIGTERMLeavesClusterAndExitsZero(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)

	var loc locateJSON
	c.ctlJSON(c.nodes[0].grpcAddr, &loc, "locate", "users", "7")
	victim := c.node(loc.Owner)
	var survivors []*proc
	for _, p := range c.nodes {
		if p != victim {
			survivors = append(survivors, p)
		}
		var g getJSON
		c.ctlJSON(p.grpcAddr, &g, "get", "users", "7")
		if !g.Found || *g.Value != profile(7) {
			t.Fatalf("get users 7 via %s = %+v", p.name, g)
		}
	}

	start := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGTERM", victim.name)
	}
	took := time.Since(start)
	if victim.waitErr != nil {
		t.Fatalf("%s exited with %v after SIGTERM, want status 0", victim.name, victim.waitErr)
	}
	t.Logf("%s (owner of users/7) exited 0 %s after SIGTERM", victim.name, took.Round(time.Millisecond))
	if log := victim.log(); !strings.Contains(log, "leaving the cluster") || !strings.Contains(log, "stopped") {
		t.Errorf("log of %s does not tell it left and stopped:\n%s", victim.name, log)
	}

	for _, p := range survivors {
		eventually(t, 10*time.Second, p.name+" lists "+victim.name+" as left and drops it from its ring", func() error {
			var m membersJSON
			if _, err := c.ctlJSONErr(p.grpcAddr, &m, "members"); err != nil {
				return err
			}
			if s := m.state(victim.name); s != "left" {
				return fmt.Errorf("%s is %q", victim.name, s)
			}
			if n := m.count("alive"); n != 2 {
				return fmt.Errorf("%d alive members, want 2: %+v", n, m.Members)
			}
			var r ringJSON
			if _, err := c.ctlJSONErr(p.grpcAddr, &r, "ring"); err != nil {
				return err
			}
			var sum uint32
			for _, rm := range r.Members {
				if rm.Name == victim.name {
					return fmt.Errorf("ring (version %d) still has %s", r.Version, victim.name)
				}
				sum += rm.Partitions
			}
			if len(r.Members) != 2 || sum != r.PartitionCount || slices.Contains(r.PartitionOwners, victim.name) {
				return fmt.Errorf("ring (version %d) has %d members owning %d of %d partitions", r.Version, len(r.Members), sum, r.PartitionCount)
			}
			return nil
		})
	}

	// The key the victim owned has a new owner, and every survivor serves it.
	var newOwner locateJSON
	c.ctlJSON(survivors[0].grpcAddr, &newOwner, "locate", "users", "7")
	if newOwner.Owner == victim.name || newOwner.Owner == "" {
		t.Fatalf("locate users 7 after %s left = %+v", victim.name, newOwner)
	}
	for _, p := range survivors {
		var l locateJSON
		c.ctlJSON(p.grpcAddr, &l, "locate", "users", "7")
		if l != newOwner {
			t.Errorf("locate users 7 on %s = %+v, on %s = %+v", p.name, l, survivors[0].name, newOwner)
		}
		var g getJSON
		c.ctlJSON(p.grpcAddr, &g, "get", "users", "7")
		if !g.Found || g.Value == nil || *g.Value != profile(7) {
			t.Errorf("get users 7 via %s after %s left = %+v", p.name, victim.name, g)
		}
	}
}

func TestBinaries_BadInputGetsClearErrors(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	addr := c.nodes[1].grpcAddr

	cases := []struct {
		name     string
		stdin    []byte
		args     []string
		wantCode string
		wantMsg  []string
	}{
		{"empty key", nil, []string{"get", "users", ""}, "INVALID_ARGUMENT", []string{"key is empty"}},
		{"empty key on set", nil, []string{"set", "sessions", "", "v"}, "INVALID_ARGUMENT", []string{"key is empty"}},
		{"key over the default limit", nil, []string{"get", "sessions", strings.Repeat("k", 1025)},
			"INVALID_ARGUMENT", []string{"key is 1025 bytes", `namespace "sessions" allows at most 1024`}},
		{"key over the configured limit", nil, []string{"get", "users", strings.Repeat("9", 65)},
			"INVALID_ARGUMENT", []string{"key is 65 bytes", `namespace "users" allows at most 64`}},
		{"key over the limit on del", nil, []string{"del", "sessions", strings.Repeat("k", 1025)},
			"INVALID_ARGUMENT", []string{"allows at most 1024"}},
		{"value over the limit", bytes.Repeat([]byte("v"), 1<<20+1), []string{"set", "sessions", "big", "-"},
			"INVALID_ARGUMENT", []string{"value is 1048577 bytes", `namespace "sessions" allows at most 1048576`}},
		{"unknown namespace on get", nil, []string{"get", "nope", "k"}, "NOT_FOUND", []string{"namespace", `"nope"`}},
		{"unknown namespace on set", nil, []string{"set", "nope", "k", "v"}, "NOT_FOUND", []string{"namespace", `"nope"`}},
		{"unknown namespace on locate", nil, []string{"locate", "nope", "k"}, "NOT_FOUND", []string{"namespace", `"nope"`}},
	}
	for _, tc := range cases {
		res, err := ctl(addr, tc.stdin, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		prefix := "ringcachectl: " + tc.wantCode + ": "
		if res.exitCode != 1 || !strings.HasPrefix(res.stderr, prefix) {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 and %q...", tc.name, res.exitCode, res.stderr, prefix)
			continue
		}
		for _, m := range tc.wantMsg {
			if !strings.Contains(res.stderr, m) {
				t.Errorf("%s: stderr %q does not say %q", tc.name, res.stderr, m)
			}
		}
	}
	// The value over the limit was not written.
	var g getJSON
	c.ctlJSON(addr, &g, "get", "sessions", "big")
	if g.Found {
		t.Errorf("get sessions big after a rejected set = %+v, want not found", g)
	}

	// ringcachectl cannot send an invalid UTF-8 key: protobuf refuses to
	// marshal it, and the command says so.
	res, err := ctl(addr, nil, "get", "sessions", "bad\xffkey")
	if err != nil {
		t.Fatal(err)
	}
	if res.exitCode != 1 || !strings.Contains(res.stderr, "invalid UTF-8") {
		t.Errorf("get with an invalid UTF-8 key: exit %d, stderr %q; want exit 1 naming invalid UTF-8", res.exitCode, res.stderr)
	}
	t.Logf("ringcachectl, invalid UTF-8 key: %s", strings.TrimSpace(res.stderr))

	// Over the wire: a hand-built GetRequest whose key is invalid UTF-8.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, method := range []string{"/ringcache.v1.Cache/Get", "/ringcache.v1.Cache/Set", "/ringcache.v1.Cache/Delete"} {
		req := protowire.AppendTag(nil, 1, protowire.BytesType)
		req = protowire.AppendString(req, "sessions")
		req = protowire.AppendTag(req, 2, protowire.BytesType)
		req = protowire.AppendBytes(req, []byte("bad\xffkey"))
		err := invokeRaw(t, conn, method, req)
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument: // the node's own validation (the design's target)
			if !strings.Contains(st.Message(), "not valid UTF-8") {
				t.Errorf("%s with an invalid UTF-8 key: %v; want a message naming UTF-8", method, err)
			}
		case codes.Internal: // grpc-go's proto codec rejects the request before any handler runs
			if !strings.Contains(st.Message(), "grpc: failed to unmarshal the received message") ||
				!strings.Contains(st.Message(), "invalid UTF-8") {
				t.Errorf("%s with an invalid UTF-8 key: %v; want grpc-go's unmarshal error naming invalid UTF-8", method, err)
			}
		default:
			t.Errorf("%s with an invalid UTF-8 key: %v; want INVALID_ARGUMENT (or grpc-go's INTERNAL unmarshal error)", method, err)
		}
		t.Logf("%s, invalid UTF-8 key: %s: %s", method, st.Code(), st.Message())
	}

	// The node is still healthy and serving.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, svc := range []string{"", "ringcache.v1.Cache"} {
		hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q after bad input = %v, %v; want SERVING", svc, hr, err)
		}
	}
	c.ctlJSON(addr, &g, "get", "users", "42")
	if !g.Found || *g.Value != profile(42) {
		t.Errorf("get users 42 after bad input = %+v", g)
	}
	for _, p := range c.nodes {
		if p.exited() {
			t.Errorf("%s exited: %v", p.name, p.waitErr)
		}
		if log := p.log(); strings.Contains(log, "panicked") {
			t.Errorf("%s logged a panic:\n%s", p.name, log)
		}
	}
}

// rawCodec sends and receives message bytes as they are, so a test can put
// on the wire what generated code refuses to marshal. Its name is "proto",
// so the server decodes with its usual codec.
type rawCodec struct{}

type rawMsg struct{ b []byte }

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*rawMsg).b, nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*rawMsg).b = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func invokeRaw(t *testing.T, conn *grpc.ClientConn, method string, req []byte) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return conn.Invoke(ctx, method, &rawMsg{b: req}, &rawMsg{}, grpc.ForceCodec(rawCodec{}))
}

func TestBinaries_MalformedConfigFailsNamingTheField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		doc  string
		want []string
	}{
		{"typo key", `
namespaces:
  users:
    ttl: 5m
    tll: 5m
`, []string{"namespaces.users.tll (line 5): unknown key"}},
		{"ttl_jitter out of range", `
namespaces:
  users: {ttl: 5m, ttl_jitter: 2}
`, []string{"namespaces.users.ttl_jitter", "must be in [0, 1), got 2"}},
		{"unknown driver", `
backends:
  local: {driver: mysql, dsn: "app@tcp(127.0.0.1:3306)/app"}
namespaces:
  users: {read: through, load_sql: "SELECT profile FROM users WHERE id = $1"}
`, []string{"backends.local.driver", `"mysql" is not supported`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "ringcache.yaml")
			if err := os.WriteFile(cfg, []byte(tc.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Port 0 everywhere: should the config be accepted, the node
			// starts without taking a known port and is killed by ctx.
			cmd := exec.CommandContext(ctx, ringcachedBin, "--name", "bad",
				"--grpc-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0",
				"--data-dir", filepath.Join(dir, "data"), "--config", cfg)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start)
			var exit *exec.ExitError
			if ctx.Err() != nil || !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("ringcached with a bad config: %v after %s (ctx %v); want a quick non-zero exit\nstderr: %s",
					err, took, ctx.Err(), stderr.String())
			}
			if took > 5*time.Second {
				t.Errorf("ringcached took %s to reject its config", took)
			}
			msg := stderr.String()
			if !strings.HasPrefix(msg, "ringcached: "+cfg+": invalid config: ") {
				t.Errorf("stderr %q does not start with the file and %q", msg, "invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not name %q", msg, w)
				}
			}
			t.Logf("exit %d after %s: %s", exit.ExitCode(), took.Round(time.Millisecond), strings.TrimSpace(msg))
		})
	}
}
