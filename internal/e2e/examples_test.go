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
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

const (
	// exampleTimeout bounds one run of an example client (six calls).
	exampleTimeout = 60 * time.Second
	// npmCITimeout bounds `npm ci` of examples/node when node_modules is missing.
	npmCITimeout = 5 * time.Minute
	// systemPython is Debian's python3, which python3-grpcio and
	// python3-protobuf install for (a pyenv python3 on PATH has neither).
	systemPython = "/usr/bin/python3"
)

// TestExamples_NodeAndPythonAgainstALiveCluster runs the client examples of
// README "From other languages" (examples/node and examples/python), which
// speak only the .proto contract, against a real 3-node cluster, each through
// a different node, and checks every line they print.
func TestExamples_NodeAndPythonAgainstALiveCluster(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	c := startCluster(t, 3)

	ran := 0
	t.Run("node", func(t *testing.T) {
		ensureNode(t, root)
		addr := c.nodes[0].grpcAddr
		runExample(t, root, example{lang: "node", addr: addr, unknown: "NOT_FOUND"}, "examples/node/example.js", "--addr", addr, "--key", "e2e-node")
		ran++
	})
	t.Run("python", func(t *testing.T) {
		ensurePythonGRPC(t)
		addr := c.nodes[1].grpcAddr
		runExample(t, root, example{lang: "python", addr: addr, unknown: "NOT_FOUND"}, "examples/python/example.py", "--addr", addr, "--key", "e2e-python")
		ran++
	})
	checkExampleWrites(t, c, ran)
}

// webToken is the bearer token of principal web that the secure examples
// test adds to the secure cluster's tokens file.
const webToken = "web-example-token"

// TestExamples_AgainstASecureCluster runs both examples against three nodes
// serving mutual TLS and an auth section (startSecureCluster): over TLS with
// a bearer token (from $RINGCACHE_TOKEN for Node.js, --token for Python)
// and over mutual TLS with principal web's client certificate. Principal
// web may read and write sessions and read users, so the unknown namespace
// is PERMISSION_DENIED. Without credentials each example stops at its first
// call with UNAUTHENTICATED.
func TestExamples_AgainstASecureCluster(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	sc := startSecureCluster(t, 3)
	dir := filepath.Join(sc.dir, "certs")
	webCrt, webKey := writePair(t, dir, "web", mustClient(t, sc.ca, "web"))

	// Give web a token too: nodes re-read the tokens file within a second.
	tokens := filepath.Join(sc.dir, "tokens")
	f, err := os.OpenFile(tokens, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(f, "web %s\n", auth.HashToken(webToken)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range sc.nodes {
		cache := pb.NewCacheClient(sc.dial(t, p.grpcAddr, nil, webToken))
		eventually(t, 10*time.Second, p.name+" accepts web's new token", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, err := cache.Get(ctx, &pb.GetRequest{Namespace: "sessions", Key: "probe"})
			return err
		})
	}

	ran := 0
	for i, lang := range []string{"node", "python"} {
		cmd, script, ensure := "node", "examples/node/example.js", ensureNode
		if lang == "python" {
			cmd, script, ensure = systemPython, "examples/python/example.py", func(t *testing.T, _ string) { ensurePythonGRPC(t) }
		}
		t.Run(lang+"/token", func(t *testing.T) {
			ensure(t, root)
			addr := sc.nodes[i].grpcAddr
			ex := example{lang: lang, addr: addr, security: " (TLS, bearer token)", unknown: "PERMISSION_DENIED"}
			args := []string{script, "--addr", addr, "--key", "e2e-" + lang, "--tls-ca", sc.caFile}
			if lang == "node" {
				ex.env = []string{"RINGCACHE_TOKEN=" + webToken}
			} else {
				args = append(args, "--token", webToken)
			}
			runExample(t, root, ex, args...)
			ran++
		})
		t.Run(lang+"/certificate", func(t *testing.T) {
			ensure(t, root)
			addr := sc.nodes[i+1].grpcAddr
			ex := example{lang: lang, addr: addr, security: " (TLS, client certificate)", unknown: "PERMISSION_DENIED"}
			runExample(t, root, ex, script, "--addr", addr, "--key", "e2e-"+lang, "--tls-ca", sc.caFile, "--tls-cert", webCrt, "--tls-key", webKey)
			ran++
		})
		t.Run(lang+"/no-credentials", func(t *testing.T) {
			ensure(t, root)
			addr := sc.nodes[2].grpcAddr
			stdout, stderr, err := execExample(t, root, nil, cmd, script, "--addr", addr, "--key", "e2e-"+lang, "--tls-ca", sc.caFile)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("%s example without credentials: %v, want exit 1", lang, err)
			}
			wantOut := fmt.Sprintf("ringcache example (%s) against %s (TLS)\n", lang, addr)
			wantErr := fmt.Sprintf("FAIL Set sessions/e2e-%s ttl=60s: UNAUTHENTICATED: ", lang)
			// Node.js may warn first (DEP0123: grpc-js sets the TLS server
			// name to the IP address dialled).
			if stdout != wantOut || !slices.ContainsFunc(strings.Split(stderr, "\n"), func(l string) bool { return strings.HasPrefix(l, wantErr) }) {
				t.Fatalf("%s example without credentials printed\n%s%s\nwant\n%s%s...", lang, stdout, stderr, wantOut, wantErr)
			}
		})
	}
	checkExampleWrites(t, sc.cluster, ran)
}

// checkExampleWrites checks that each of ran passing examples' Set and
// Delete reached the key's owner (stats count writes on the owner only).
func checkExampleWrites(t *testing.T, c *cluster, ran int) {
	t.Helper()
	if t.Failed() {
		return
	}
	var stats []statsJSON
	c.ctlJSON(c.nodes[2].grpcAddr, &stats, "stats")
	var sets, deletes uint64
	for _, p := range c.nodes {
		s, _ := nsOf(stats, p.name, "sessions")
		sets += s.Sets
		deletes += s.Deletes
	}
	if sets != uint64(ran) || deletes != uint64(ran) {
		t.Errorf("sessions stats after %d passing examples: %d sets, %d deletes; want %d each", ran, sets, deletes, ran)
	}
}

// example is what one run of an example client should print.
type example struct {
	lang string // node or python: the example prints it, and its key is e2e-<lang>
	addr string
	// security is what the first line says after the address, e.g.
	// " (TLS, bearer token)"; unknown is the status of the unknown
	// namespace's Get.
	security, unknown string
	// env is added to the environment.
	env []string
}

// runExample runs an example client (node or systemPython, by ex.lang) from
// the repository root with args, the script first, and checks it exits 0
// printing exactly the expected lines.
func runExample(t *testing.T, root string, ex example, args ...string) {
	t.Helper()
	name := "node"
	if ex.lang == "python" {
		name = systemPython
	}
	stdout, _, err := execExample(t, root, ex.env, name, args...)
	if err != nil {
		t.Fatalf("%s example: %v (want exit 0)", ex.lang, err)
	}

	key := "e2e-" + ex.lang
	want := []string{
		fmt.Sprintf("ringcache example (%s) against %s%s", ex.lang, ex.addr, ex.security),
		fmt.Sprintf("Set sessions/%s ttl=60s: ok", key),
		fmt.Sprintf(`Get sessions/%s: found "hello from %s": ok`, key, ex.lang),
		fmt.Sprintf("GetMany sessions [%s, %s-missing]: found, not found: ok", key, key),
		fmt.Sprintf("Delete sessions/%s: ok", key),
		fmt.Sprintf("Get sessions/%s: not found: ok", key),
		fmt.Sprintf("Get no-such-namespace/%s: %s: ok", key, ex.unknown),
		"PASS: 6 steps",
	}
	got := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s example printed:\n%s\nwant:\n%s", ex.lang, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// execExample runs name with args from the repository root, env added to
// the environment, and returns what it printed and how it exited.
func execExample(t *testing.T, root string, env []string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exampleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	// No __pycache__ in the work tree.
	cmd.Env = append(append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1"), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	t.Logf("%s %s: %s\n--- stdout ---\n%s--- stderr ---\n%s", name, strings.Join(args, " "),
		time.Since(start).Round(time.Millisecond), out.String(), errOut.String())
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %s", name, exampleTimeout)
	}
	return out.String(), errOut.String(), err
}

// repoRoot returns the repository root: two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}

// missingTool fails the test under CI, where .ci/run installs what the
// examples need, and skips it elsewhere.
func missingTool(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run should have installed it)", msg)
	}
	t.Skip(msg)
}

// ensureNode checks for node and runs `npm ci` in examples/node when its
// dependencies are not installed (this needs the npm registry).
func ensureNode(t *testing.T, root string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		missingTool(t, "node is not on PATH: the Node.js example needs Node.js 18 or later")
	}
	dir := filepath.Join(root, "examples", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@grpc", "proto-loader", "package.json")); err == nil {
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		missingTool(t, "examples/node/node_modules is missing and npm is not on PATH")
	}
	t.Logf("examples/node/node_modules is missing: running npm ci")
	ctx, cancel := context.WithTimeout(context.Background(), npmCITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in examples/node (needs the npm registry): %v\n%s", err, out)
	}
}

// ensurePythonGRPC checks that /usr/bin/python3 can import grpc and protobuf.
func ensurePythonGRPC(t *testing.T) {
	t.Helper()
	out, err := exec.Command(systemPython, "-c", "import grpc, google.protobuf").CombinedOutput()
	if err != nil {
		missingTool(t, "%s cannot import grpc and protobuf (apt-get install -y python3-grpcio python3-protobuf): %v\n%s",
			systemPython, err, bytes.TrimSpace(out))
	}
}
