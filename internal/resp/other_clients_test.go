package resp_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/node"
)

// systemPython is Debian's python3, which python3-redis installs for (a
// pyenv python3 first on PATH has no redis module).
const systemPython = "/usr/bin/python3"

// The Redis Cluster clients of other languages, run as the examples
// (examples/python/redis_cluster.py with redis-py's RedisCluster,
// examples/node/redis-cluster.js with ioredis's Cluster), each given one
// node: they learn all three, every result is right, and no node forwards
// anything while they run, so each key went straight to its owner.
func TestOtherLanguagesClusterClients_SendEachKeyToItsOwner(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, 3, nil)
	addrs := respAddrs(c)
	wantMasters := "masters " + strings.Join(slices.Sorted(slices.Values(addrs)), " ")
	for i, ex := range []struct {
		lang, prefix string
		ensure       func(t *testing.T)
		cmd          []string
	}{
		{"python", "py", ensureRedisPy, []string{systemPython, "examples/python/redis_cluster.py"}},
		{"node", "js", func(t *testing.T) { ensureIORedis(t, root) }, []string{"node", "examples/node/redis-cluster.js"}},
	} {
		t.Run(ex.lang, func(t *testing.T) {
			ex.ensure(t)
			before := forwards(t, c)
			args := append(ex.cmd[1:], "--addr", addrs[i], "--prefix", ex.prefix, "--keys", "200")
			out := runScript(t, root, ex.cmd[0], args...)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if len(lines) != 5 || lines[4] != wantMasters {
				t.Fatalf("the %s example printed:\n%s\nwant four ok lines, then %q", ex.lang, out, wantMasters)
			}
			for _, l := range lines[:4] {
				if !strings.HasPrefix(l, "ok   ") {
					t.Fatalf("the %s example printed:\n%s", ex.lang, out)
				}
			}
			if n := forwards(t, c) - before; n != 0 {
				t.Errorf("the nodes forwarded %d ops of the %s cluster client; it should send each key to its owner", n, ex.lang)
			}
			// What it wrote is what any node serves.
			r := goRedis(t, addrs[(i+2)%3], nil)
			key, want := ex.prefix+":7", ex.prefix+"-value-7"
			if got, err := r.Get(ctx, key).Result(); err != nil || got != want {
				t.Errorf("GET %s through another node = %q, %v; want %q", key, got, err, want)
			}
			if n, err := r.Exists(ctx, ex.prefix+":0").Result(); err != nil || n != 0 {
				t.Errorf("EXISTS %s:0 after its DEL = %d, %v; want 0", ex.prefix, n, err)
			}
		})
	}
}

// runScript runs name with args from the repository root and returns its
// standard output; it fails the test unless the script exits 0.
func runScript(t *testing.T, root, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // no __pycache__ in the work tree
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

// missingTool fails the test in CI, where .ci/run installs what the tests
// need, and skips it elsewhere.
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run should have installed it)", msg)
	}
	t.Skip(msg)
}

// ensureRedisPy checks that Debian's python3 has redis-py's cluster client.
func ensureRedisPy(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(systemPython, "-c", "import redis.cluster").CombinedOutput(); err != nil {
		missingTool(t, "%s cannot import redis.cluster (apt-get install -y python3-redis): %v\n%s", systemPython, err, bytes.TrimSpace(out))
	}
}

// ensureIORedis checks for node and ioredis in examples/node. It does not
// run npm ci itself: that empties node_modules, which internal/e2e's
// examples may be using at the same moment (.ci/run installs first).
func ensureIORedis(t *testing.T, root string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		missingTool(t, "node is not on PATH: the ioredis example needs Node.js 18 or later")
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "node", "node_modules", "ioredis", "package.json")); errors.Is(err, os.ErrNotExist) {
		missingTool(t, "examples/node has no ioredis installed: run npm ci --prefix examples/node")
	} else if err != nil {
		t.Fatal(err)
	}
}

// ioredis's Cluster client under load while a node joins and another
// leaves: errors are allowed during the changes, then it refreshes its
// slot map and every command succeeds, each key sent straight to its owner.
//
// ioredis reads the map on a connection of its own that it closes at once,
// so the connections it sends commands on never send a cluster command:
// by default the door serves them as a standalone client's, forwarding a
// moved key rather than answering MOVED, and ioredis reloads its map only
// on a connection error (it has no periodic reload unless
// slotsRefreshInterval is set). docs/resp.md gives the two settings that
// bound the window, and each is run here: slotsRefreshInterval on the
// client, or resp.redirect: always on the nodes.
func TestOtherLanguagesClusterClients_FollowRingChanges(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ensureIORedis(t, root)
	t.Run("slotsRefreshInterval", func(t *testing.T) {
		ioredisThroughRingChange(t, root, nil, 2*time.Second)
	})
	t.Run("redirect always", func(t *testing.T) {
		ioredisThroughRingChange(t, root, func(_ int, cfg *node.Config) { cfg.RESP.RedirectAll = true }, 0)
	})
}

// ioredisThroughRingChange runs the ioredis script against a 3-node
// cluster configured by configure, with ioredis's slotsRefreshInterval set
// to refresh (0: ioredis's default, none), through a join and a leave.
func ioredisThroughRingChange(t *testing.T, root string, configure func(int, *node.Config), refresh time.Duration) {
	c := startCluster(t, 3, configure)
	addrs := respAddrs(c)

	cmd := exec.Command("node", "internal/resp/testdata/ioredis-ring-change.js", addrs[1], strconv.Itoa(int(refresh.Milliseconds())))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(root, "examples", "node", "node_modules"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	read := func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the ioredis script ended; stderr:\n%s", stderr.String())
			}
			return l
		case <-time.After(30 * time.Second):
			t.Fatalf("no answer from the ioredis script in 30 s; stderr:\n%s", stderr.String())
			return ""
		}
	}
	send := func(command string) string {
		t.Helper()
		if _, err := fmt.Fprintln(stdin, command); err != nil {
			t.Fatal(err)
		}
		return read()
	}
	if l := read(); l != "ready" {
		t.Fatalf("the ioredis script said %q; want ready", l)
	}

	// rounds waits until the load has run n more rounds, ok or failed.
	rounds := func(n int) {
		t.Helper()
		var start int
		for i := 0; ; i++ {
			var ops, errs int
			if l := send("ops"); func() bool { _, err := fmt.Sscanf(l, "ops %d %d", &ops, &errs); return err != nil }() {
				t.Fatalf("the ioredis script said %q; want ops N M", l)
			}
			if i == 0 {
				start = ops + errs
			} else if ops+errs-start >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	rounds(200)
	changing := time.Now()
	added := c.AddNode()
	c.WaitConverged()
	c.Stop(0)
	c.WaitConverged()
	took := time.Since(changing)
	rounds(500) // and well after them, until it met what moved
	load := send("stop")
	t.Logf("ioredis under the changes, %v (ops, errors): %s", took.Round(time.Millisecond), load)

	refreshed := time.Now()
	for l := send("check"); l != "check ok"; l = send("check") {
		if time.Since(refreshed) > 20*time.Second {
			t.Fatalf("20 s after the changes ioredis still fails: %s", l)
		}
	}
	t.Logf("ioredis's commands all succeeded %v after the changes", time.Since(refreshed).Round(time.Millisecond))
	// A check of 50 fresh keys forwards none once ioredis's map is current:
	// at once where MOVED reaches its connections, within its refresh
	// interval where it does not.
	direct := func() uint64 {
		t.Helper()
		before := forwards(t, c)
		if l := send("check"); l != "check ok" {
			t.Fatalf("after ioredis refreshed its map: %s", l)
		}
		return forwards(t, c) - before
	}
	wait := refresh + 3*time.Second
	for n := direct(); n != 0; n = direct() {
		if refresh == 0 || time.Since(refreshed) > wait {
			t.Fatalf("%d of 100 ops forwarded %v after the changes; ioredis should reach each key's owner (node %d joined, node 0 left)", n, time.Since(refreshed).Round(time.Millisecond), added)
		}
	}
	t.Logf("ioredis sent each key to its owner %v after the changes", time.Since(refreshed).Round(time.Millisecond))
	if n := direct(); n != 0 {
		t.Fatalf("%d of 100 ops forwarded once ioredis had sent a check straight to the owners", n)
	}
	if _, err := fmt.Fprintln(stdin, "quit"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the ioredis script: %v; stderr:\n%s", err, stderr.String())
	}
}
