package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		runExample(t, root, "node", addr, "node", "examples/node/example.js", "--addr", addr, "--key", "e2e-node")
		ran++
	})
	t.Run("python", func(t *testing.T) {
		ensurePythonGRPC(t)
		addr := c.nodes[1].grpcAddr
		runExample(t, root, "python", addr, systemPython, "examples/python/example.py", "--addr", addr, "--key", "e2e-python")
		ran++
	})

	// Each example's Set and Delete reached the key's owner (stats count
	// writes on the owner only).
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

// runExample runs name (an example client) from the repository root and
// checks it exits 0 printing exactly the expected lines for key e2e-<lang>.
func runExample(t *testing.T, root, lang, addr, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exampleTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = root
	// No __pycache__ in the work tree.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %s\n--- stdout ---\n%s--- stderr ---\n%s", name, strings.Join(args, " "),
		time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
	if ctx.Err() != nil {
		t.Fatalf("%s example did not finish within %s", lang, exampleTimeout)
	}
	if err != nil {
		t.Fatalf("%s example: %v (want exit 0)", lang, err)
	}

	key := "e2e-" + lang
	want := []string{
		fmt.Sprintf("ringcache example (%s) against %s", lang, addr),
		fmt.Sprintf("Set sessions/%s ttl=60s: ok", key),
		fmt.Sprintf(`Get sessions/%s: found "hello from %s": ok`, key, lang),
		fmt.Sprintf("GetMany sessions [%s, %s-missing]: found, not found: ok", key, key),
		fmt.Sprintf("Delete sessions/%s: ok", key),
		fmt.Sprintf("Get sessions/%s: not found: ok", key),
		fmt.Sprintf("Get no-such-namespace/%s: NOT_FOUND: ok", key),
		"PASS: 6 steps",
	}
	got := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s example printed:\n%s\nwant:\n%s", lang, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
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
