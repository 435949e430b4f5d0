package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startRedis runs redis-server on a free loopback port, without
// persistence, for the test's duration, and returns its redis:// URL.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missingTool(t, "redis-server is not installed (apt-get install redis-server)")
	}
	port, err := freeLoopbackPort(false)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "redis://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the port, not waiting a fixed time
	}
}

// benchJSON runs ringcachectl with args and -o json, and decodes stdout.
func benchJSON(t *testing.T, addr string, v any, args ...string) {
	t.Helper()
	res, err := ctl(addr, nil, append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	if res.exitCode != 0 {
		t.Fatalf("ringcachectl %s: exit %d: %s", strings.Join(args, " "), res.exitCode, res.stderr)
	}
	if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
		t.Fatalf("ringcachectl %s: %v\n%s", strings.Join(args, " "), err, res.stdout)
	}
}

type benchOut struct {
	Target    string  `json:"target"`
	Ops       uint64  `json:"ops"`
	Gets      uint64  `json:"gets"`
	Hits      uint64  `json:"hits"`
	Errors    uint64  `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	FirstErr  string  `json:"first_error"`
}

// The same generator loads the cluster (pipelined and unary) and Redis;
// every Get hits after the prefill and nothing fails.
func TestBench_ClusterAndRedisThroughOneGenerator(t *testing.T) {
	c := startCluster(t, 3)
	addr := c.nodes[0].grpcAddr
	redis := startRedis(t)
	common := []string{"bench", "--namespace", "sessions", "--duration", "700ms", "--concurrency", "8", "--keys", "2000", "--read-ratio", "0.9"}
	for _, extra := range [][]string{nil, {"--unary"}, {"--target", redis}, {"--key-dist", "zipf"}} {
		var out benchOut
		benchJSON(t, addr, &out, append(common, extra...)...)
		t.Logf("%v: %s %.0f ops/s p50 %.0f µs p99 %.0f µs", extra, out.Target, out.OpsPerSec, out.P50, out.P99)
		if out.Ops == 0 || out.Errors != 0 || out.Gets == 0 || out.Hits != out.Gets || out.P50 <= 0 || out.P99 < out.P50 {
			t.Errorf("%v: %+v", extra, out)
		}
	}
}

func TestBench_StampedeLoadsOnceAcrossTheCluster(t *testing.T) {
	c := startCluster(t, 3)
	var out struct {
		Nodes          int     `json:"nodes"`
		RingcacheLoads uint64  `json:"ringcache_loads"`
		NaiveLoads     *uint64 `json:"naive_loads"`
		Errors         uint64  `json:"errors"`
	}
	benchJSON(t, c.nodes[1].grpcAddr, &out, "bench", "stampede", "--namespace", "users", "--key", "7",
		"--concurrency", "500", "--config", c.config, "--naive-namespace", "sessions")
	if out.Nodes != 3 || out.RingcacheLoads != 1 || out.Errors != 0 {
		t.Fatalf("%+v: want exactly 1 database load over 3 nodes", out)
	}
	if out.NaiveLoads == nil || *out.NaiveLoads < 1 {
		t.Fatalf("naive cache-aside made %v queries", out.NaiveLoads)
	}
	t.Logf("500 concurrent Gets: read-through 1 load, naive cache-aside %d queries", *out.NaiveLoads)
}

type memoryOut struct {
	HeapPerEntry float64 `json:"heap_bytes_per_entry"`
	RSSPerEntry  float64 `json:"rss_bytes_per_entry"`
	NotRetained  int64   `json:"entries_not_retained"`
}

func TestBench_MemoryPerEntry(t *testing.T) {
	c, urls := startClusterWithAdmin(t, 3)
	admins := make([]string, len(urls))
	for i, u := range urls {
		admins[i] = strings.TrimPrefix(u, "http://")
	}
	const entries = 30000
	var rc, rd memoryOut
	benchJSON(t, c.nodes[0].grpcAddr, &rc, "bench", "memory", "--namespace", "sessions", "--entries", fmt.Sprint(entries), "--admin-addrs", strings.Join(admins, ","))
	benchJSON(t, c.nodes[0].grpcAddr, &rd, "bench", "memory", "--namespace", "sessions", "--entries", fmt.Sprint(entries), "--target", startRedis(t))
	t.Logf("heap bytes per 100-byte entry: ringcache %.0f, redis %.0f", rc.HeapPerEntry, rd.HeapPerEntry)
	for name, m := range map[string]memoryOut{"ringcache": rc, "redis": rd} {
		// A 100-byte value and its key cannot cost less than 100 bytes, nor
		// (in either) several KiB.
		if m.NotRetained != 0 || m.HeapPerEntry < 100 || m.HeapPerEntry > 4096 {
			t.Errorf("%s: %+v", name, m)
		}
	}
}
