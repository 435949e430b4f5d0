package resp_test

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
	"testing"
	"time"
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
