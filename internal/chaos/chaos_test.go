package chaos_test

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/chaos"
)

// knownFailing lists the checks today's code fails, each with why. It is
// the one place to edit when a fix lands: remove the entry, and the check
// is enforced again. A listed check that fails in every run (every: true)
// and passes fails the test, so a fix cannot land without its entry going;
// an intermittent one (a race) that passes is only logged.
var knownFailing = map[[3]string]known{ // {nemesis, namespace, check}
	// Issue 13 break 1 (stale reads after a partition heals, after a pause
	// past detection, and on a rejoin after kill -9) is fixed by
	// engine.Merge and Peer.Merged; the rejoin race on a graceful restart
	// by the hand-off fence (internal/engine/fence.go); the partition
	// residue (both sides wrote one key behind) by engine.Superseded,
	// strategy.Write.Elsewhere, and no node routing by a table without
	// itself (internal/table) nor keeping the copies of a superseded write.
	// What is still seen is listed below as intermittent (docs/reliability.md,
	// "What it found"):
	//
	// A restart, write-through: while the table that moves partitions back
	// to the restarted node spreads (a second or two; 10 s on a loaded CI
	// machine), two nodes own them, and a read there may return the other's
	// older value. That is allowed in a fault window (the cache is weaker
	// there, docs/reliability.md), and after convergence the fence leaves
	// none; but porcupine then finds the round's history not linearizable.
	// Seen once in a loaded CI run after the fence (0/1), never in 64
	// restart rounds on an idle machine.
	{chaos.NemesisRestart, chaos.NSWriteThrough, chaos.CheckLinearizable}: {"reads in the restart's fault window may see the other owner's older value", false},
}

// known is why a check fails today, and whether it fails in every run.
type known struct {
	why   string
	every bool
}

var (
	durationFlag = flag.Duration("chaos.duration", 0, "how long the nemesis rounds go on (also RINGCACHE_CHAOS_DURATION); 0: one round per nemesis")
	seedFlag     = flag.Uint64("chaos.seed", 0, "seed of victims, keys and operations (also RINGCACHE_CHAOS_SEED); 0: from the clock")
	nemesesFlag  = flag.String("chaos.nemeses", "", "comma-separated nemeses to cycle through (also RINGCACHE_CHAOS_NEMESES); empty: all")
)

// TestChaos runs every nemesis against a 3-node cluster with PostgreSQL,
// under load, and fails on any finding not listed in knownFailing. By
// default one round per nemesis (about a minute); `make chaos` runs it
// for 20 minutes and prints the table.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and PostgreSQL in network namespaces; not in -short mode")
	}
	requireRoot(t)
	dur := envDuration(t, "RINGCACHE_CHAOS_DURATION", *durationFlag)
	seed := envUint(t, "RINGCACHE_CHAOS_SEED", *seedFlag)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	nemeses := envList("RINGCACHE_CHAOS_NEMESES", *nemesesFlag)
	t.Logf("seed %d (rerun with RINGCACHE_CHAOS_SEED=%d), duration %s, nemeses %v", seed, seed, dur, nemeses)
	dir := t.TempDir()
	bin := buildNode(t, dir)

	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-30*time.Second))
		defer cancel()
	}
	out, err := chaos.Run(ctx, chaos.Config{
		Cluster:  chaos.ClusterConfig{Binary: bin, Dir: dir, NodeFlags: strings.Fields(os.Getenv("RINGCACHE_CHAOS_NODE_FLAGS"))},
		Duration: dur,
		Nemeses:  nemeses,
		Seed:     seed,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if out != nil {
		rep := chaos.Check(out)
		var table bytes.Buffer
		rep.WriteTable(&table)
		t.Logf("\n%s", table.String())
		saveOutput(t, out, table.Bytes(), dir)
		checkReport(t, rep)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// checkReport fails t on every finding not in knownFailing, on every
// known failure that did not happen, and on rounds that did no work.
func checkReport(t *testing.T, rep *chaos.Report) {
	t.Helper()
	seen := map[[3]string]bool{}
	for _, f := range rep.Findings {
		id := [3]string{f.Nemesis, f.NS, f.Check}
		if k, ok := knownFailing[id]; ok {
			seen[id] = true
			t.Logf("known failure (%s): %s", k.why, f)
			continue
		}
		t.Errorf("%s", f)
	}
	for id, k := range knownFailing {
		switch {
		case seen[id]:
		case k.every:
			t.Errorf("%s/%s %s passed, but knownFailing lists it (%s): remove the entry", id[0], id[1], id[2], k.why)
		default:
			t.Logf("%s/%s %s passed this run; knownFailing lists it as intermittent (%s)", id[0], id[1], id[2], k.why)
		}
	}
	for _, r := range rep.Rows {
		if r.Acked == 0 {
			t.Errorf("%s/%s: no write was acknowledged in %d rounds: the workload did not run", r.Nemesis, r.NS, r.Rounds)
		}
	}
}

// saveOutput writes the table, the history (JSON lines) and the nodes' logs
// (nodes/<name>.<start>.log, from the run's directory) into the directory
// RINGCACHE_CHAOS_OUT names, when it is set.
func saveOutput(t *testing.T, out *chaos.Outcome, table []byte, runDir string) {
	t.Helper()
	dir := os.Getenv("RINGCACHE_CHAOS_OUT")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "table.txt"), table, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := out.WriteJSON(f); err != nil {
		t.Fatal(err)
	}
	if err := copyLogs(runDir, filepath.Join(dir, "nodes")); err != nil {
		t.Fatal(err)
	}
	t.Logf("table, history and node logs in %s", dir)
}

// copyLogs copies the nodes' log files from the run's directory into to,
// replacing what an earlier run left there.
func copyLogs(from, to string) error {
	logs, err := filepath.Glob(filepath.Join(from, "*.log"))
	if err != nil {
		return err
	}
	if err := os.RemoveAll(to); err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(l)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// requireRoot skips the test without root (network namespaces need it),
// or fails it under CI=true, where it must run.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the chaos suite needs root for network namespaces, and CI=true: run the tests as root")
	}
	t.Skip("the chaos suite needs root for network namespaces (sudo go test ./internal/chaos/)")
}

// buildNode builds ringcached into dir, without -race (the race detector
// covers the test process).
func buildNode(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "ringcached")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ringcache/ringcache/cmd/node").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ringcached: %v\n%s", err, out)
	}
	t.Logf("built ringcached in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("%s=%q: want a duration such as 20m", name, v)
	}
	return d
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// envList returns the comma-separated names in the environment variable,
// else in def; nil when both are empty (chaos.Run then takes all).
func envList(name, def string) []string {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
