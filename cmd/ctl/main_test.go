package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/ctl"
)

func TestRun_FailurePrintsPrefixedErrorAndExits1(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"--addr", addr, "--timeout", "2s", "members"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if want := "ringcachectl: cannot reach ringcache node at " + addr; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want empty", stdout.String())
	}
}

func TestRun_HelpListsCommandsAndExits0(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	for _, c := range []string{"members", "ring", "locate", "get", "set", "del", "stats", "journal", "top", "bench", "simulate"} {
		if !strings.Contains(stdout.String(), "  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, stdout.String())
		}
	}
}

// buildBoth builds ringcachectl and ringcachectl-bench into one directory,
// as `make build` does, and returns it.
func buildBoth(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	dir := t.TempDir()
	for pkg, name := range map[string]string{".": "ringcachectl", "./bench": ctl.PluginName} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return dir
}

// ringcachectl finds ringcachectl-bench next to itself (through a symlink
// too) with nothing on $PATH, and `ringcachectl bench|simulate` behave as
// the commands of one binary: output on stdout, one error line, status 1.
func TestRun_BenchAndSimulateRunTheBinaryNextToIt(t *testing.T) {
	dir := buildBoth(t)
	link := filepath.Join(t.TempDir(), "ringcachectl")
	if err := os.Symlink(filepath.Join(dir, "ringcachectl"), link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	for _, exe := range []string{filepath.Join(dir, "ringcachectl"), link} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(exe, "-o", "json", "simulate", "--keys", "200", "--requests", "2000", "--sizes", "10,100")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s simulate: %v (stderr %q)", exe, err, stderr.String())
		}
		var v struct {
			Requests int `json:"requests"`
			Results  []struct {
				SizeEntries uint64 `json:"size_entries"`
			} `json:"results"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &v); err != nil || v.Requests != 2000 || len(v.Results) != 2 || v.Results[1].SizeEntries != 100 {
			t.Errorf("%s -o json simulate: %+v (%v), want 2000 requests at 10 and 100 entries:\n%s", exe, v, err, stdout.String())
		}

		stdout.Reset()
		stderr.Reset()
		cmd = exec.Command(exe, "bench", "--read-ratio", "1.5")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 1 {
			t.Errorf("%s bench --read-ratio 1.5: %v, want exit status 1", exe, err)
		}
		if got := stderr.String(); !strings.HasPrefix(got, "ringcachectl: ") || !strings.Contains(got, "read ratio must be in [0, 1]") || strings.Count(got, "\n") != 1 {
			t.Errorf("%s bench --read-ratio 1.5: stderr %q, want one line: ringcachectl: ... read ratio must be in [0, 1]", exe, got)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s bench --read-ratio 1.5: stdout %q, want empty", exe, stdout.String())
		}
	}

	// Shell completion comes from ringcachectl-bench, each flag once.
	out, err := exec.Command(filepath.Join(dir, "ringcachectl"), "__complete", "--addr", "h:1", "bench", "--").Output()
	if err != nil {
		t.Fatalf("__complete bench --: %v", err)
	}
	names := map[string]int{}
	for line := range strings.Lines(string(out)) {
		name, _, _ := strings.Cut(strings.TrimSpace(line), "\t")
		names[name]++
	}
	for _, flag := range []string{"--concurrency", "--target", "--addr", "--output", "--timeout"} {
		if names[flag] != 1 {
			t.Errorf("__complete bench -- offers %s %d times, want once:\n%s", flag, names[flag], out)
		}
	}
	if out, err := exec.Command(filepath.Join(dir, "ringcachectl"), "__complete", "bench", "st").Output(); err != nil || !strings.HasPrefix(string(out), "stampede\t") {
		t.Errorf("__complete bench st: %q (%v), want stampede", out, err)
	}
}

// Without ringcachectl-bench, ringcachectl bench fails with how to get it.
func TestRun_BenchWithoutTheBinarySaysHowToBuildIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"bench"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.HasPrefix(stderr.String(), "ringcachectl: bench runs in a separate binary: ringcachectl-bench not found") ||
		!strings.Contains(stderr.String(), "make build") {
		t.Errorf("exit %d, stderr %q; want 1 and how to build ringcachectl-bench", code, stderr.String())
	}
}
