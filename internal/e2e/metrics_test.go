package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/telemetry/telemetrytest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// startClusterWithAdmin is startCluster with --admin-addr on a free port
// for each node; it returns the cluster and the admin base URL of each node.
func startClusterWithAdmin(t *testing.T, n int) (*cluster, []string) {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	db := filepath.Join(c.dir, "app.db")
	if out, err := exec.Command(demoseedBin, "-db", db, "-rows", strconv.Itoa(seededRows)).CombinedOutput(); err != nil {
		t.Fatalf("demoseed: %v\n%s", err, out)
	}
	c.config = filepath.Join(c.dir, "ringcache.yaml")
	if err := os.WriteFile(c.config, fmt.Appendf(nil, testConfig, db), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	for attempt := 1; ; attempt++ {
		urls, err := c.tryStartWithAdmin(n, attempt)
		if err == nil {
			return c, urls
		}
		c.killAll()
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("start cluster (attempt %d): %v", attempt, err)
		}
		t.Logf("attempt %d: %v; retrying on new ports", attempt, err)
	}
}

func (c *cluster) tryStartWithAdmin(n, attempt int) ([]string, error) {
	grpcPorts, gossipPorts, err := pickPorts(n)
	if err != nil {
		return nil, err
	}
	join := make([]string, n)
	for i := range n {
		join[i] = "127.0.0.1:" + strconv.Itoa(gossipPorts[i])
	}
	var urls []string
	c.nodes = nil
	for i := range n {
		admin, err := freeAddr()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("n%d", i+1)
		p := &proc{
			name:       name,
			grpcAddr:   "127.0.0.1:" + strconv.Itoa(grpcPorts[i]),
			gossipAddr: join[i],
			logPath:    filepath.Join(c.dir, fmt.Sprintf("%s.%d.log", name, attempt)),
		}
		if err := c.start(p, "--join", strings.Join(join, ","), "--admin-addr", admin, "--pprof"); err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, p)
		urls = append(urls, "http://"+admin)
	}
	return urls, c.waitFormed(n)
}

// httpGet returns the status and body of GET url.
func httpGet(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// shownOnUse are the families a node exports once it recorded a sample
// (histograms of its own, not gRPC's): absent on a node that did not.
var shownOnUse = map[string]bool{"ringcache_forward_latency_seconds": true}

// clusterSum scrapes every node and adds up name{labels...} across them;
// every node must expose the family, unless it is shownOnUse.
func clusterSum(urls []string, name string, labels ...string) (float64, error) {
	total := 0.0
	for _, u := range urls {
		f, err := telemetrytest.ScrapeURL(http.DefaultClient, u+"/metrics")
		if err != nil {
			return 0, err
		}
		if _, ok := f[name]; !ok && !shownOnUse[name] {
			return 0, fmt.Errorf("%s/metrics has no %s; families %v", u, name, f.Names())
		}
		v, _ := f.Sum(name, labels...) // no such series (a node that served no such call): 0
		total += v
	}
	return total, nil
}

// TestBinaries_MetricsAfterAKnownWorkload runs a known workload on a real
// three-node cluster and checks each node's /metrics, summed across nodes,
// against it, and /healthz and /readyz through a graceful stop.
func TestBinaries_MetricsAfterAKnownWorkload(t *testing.T) {
	c, urls := startClusterWithAdmin(t, 3)
	for i, u := range urls {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body, err := httpGet(u + path); err != nil || code != http.StatusOK {
				t.Fatalf("%s %s = %d %q %v, want 200", c.nodes[i].name, path, code, body, err)
			}
		}
	}

	// The workload: the cold key users/7 read once through each node (one
	// load on its owner, two forwards), and one Set through n1.
	conns := dial(t, c.nodes...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, nc := range conns {
		resp, err := nc.cache.Get(ctx, &pb.GetRequest{Namespace: "users", Key: "7"})
		if err != nil || !resp.Found || string(resp.Value) != profile(7) {
			t.Fatalf("get users/7 through %s: %v, %v", nc.name, resp, err)
		}
	}
	if _, err := conns[0].cache.Set(ctx, &pb.SetRequest{Namespace: "sessions", Key: "s1", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	loc, err := conns[0].admin.Locate(ctx, &pb.LocateRequest{Namespace: "users", Key: "7"})
	if err != nil {
		t.Fatal(err)
	}
	sessionsOwner, err := conns[0].admin.Locate(ctx, &pb.LocateRequest{Namespace: "sessions", Key: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	wantForwards := 2.0 // the two non-owners of users/7
	if sessionsOwner.Owner != "n1" {
		wantForwards++
	}

	users := []string{"namespace", "users"}
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"ringcache_gets_total", users, 3},
		{"ringcache_misses_total", users, 1},
		{"ringcache_hits_total", users, 2},
		{"ringcache_backend_loads_total", users, 1},
		{"ringcache_backend_load_errors_total", users, 0},
		{"ringcache_sets_total", []string{"namespace", "sessions"}, 1},
		{"ringcache_forwards_total", nil, wantForwards},
		{"ringcache_forwarded_in_total", nil, wantForwards},
		{"ringcache_forward_errors_total", nil, 0},
		{"ringcache_members", []string{"state", "alive"}, 9}, // each of 3 sees 3
		{"ringcache_ring_partitions", nil, 4096},             // the nodes own every partition once
		// Server-side latency histograms count the calls (sample counts).
		{"ringcache_rpc_server_call_duration_seconds", []string{"rpc_method", "ringcache.v1.Cache/Get"}, 3},
		// Forwards travel on the peers' streams; the forwarding node times each.
		{"ringcache_forward_latency_seconds", nil, wantForwards},
	}
	// A server records a call's histogram sample as the call ends, which the
	// client can see a moment earlier: poll.
	eventually(t, 5*time.Second, "metrics match the workload", func() error {
		var bad []string
		for _, w := range want {
			got, err := clusterSum(urls, w.name, w.labels...)
			if err != nil {
				return err
			}
			if got != w.value {
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.value))
			}
		}
		if bad != nil {
			return errors.New(strings.Join(bad, "; "))
		}
		return nil
	})
	// The load happened on the owner, and only there.
	for i, u := range urls {
		f, err := telemetrytest.ScrapeURL(http.DefaultClient, u+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		loads, _ := f.Sum("ringcache_backend_loads_total", users...)
		if owner := c.nodes[i].name == loc.Owner; (loads == 1) != owner {
			t.Errorf("%s (owner of users/7: %v) made %v loads", c.nodes[i].name, owner, loads)
		}
	}

	// SIGTERM: the node drains and exits 0; its endpoints go away with it.
	victim := c.nodes[2]
	terminate(t, 20*time.Second, victim)
	if code, _, err := httpGet(urls[2] + "/readyz"); err == nil {
		t.Errorf("/readyz of %s answers %d after it exited", victim.name, code)
	}
	eventually(t, 15*time.Second, "survivors see the leave", func() error {
		got, err := clusterSum(urls[:2], "ringcache_members", "state", "alive")
		if err != nil {
			return err
		}
		if got != 4 {
			return fmt.Errorf("survivors count %v alive members, want 2 each", got)
		}
		return nil
	})
}
