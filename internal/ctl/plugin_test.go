package ctl

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakePlugin puts on an otherwise empty $PATH a ringcachectl-bench that
// prints its arguments one a line, copies stdin to stderr and exits with
// status exit.
func fakePlugin(t *testing.T, exit string) {
	t.Helper()
	dir := t.TempDir()
	// Shell builtins only: $PATH holds nothing else.
	script := "#!/bin/sh\nprintf '%s\\n' \"$@\"\n" +
		"while IFS= read -r line; do printf '%s\\n' \"$line\" >&2; done\nexit " + exit + "\n"
	if err := os.WriteFile(filepath.Join(dir, PluginName), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
}

// bench and simulate run ringcachectl-bench with the command line as given,
// global flags included wherever they stand, and its streams and exit
// status.
func TestPlugin_RunsWithArgsStreamsAndStatus(t *testing.T) {
	fakePlugin(t, "3")
	for _, tc := range []struct{ args, want []string }{
		{
			[]string{"--addr", "h:1", "bench", "stampede", "--concurrency", "5", "-o", "json"},
			[]string{"bench", "--addr", "h:1", "stampede", "--concurrency", "5", "-o", "json"},
		},
		{
			[]string{"-o", "json", "simulate", "--trace", "-", "--sizes=1MiB"},
			[]string{"simulate", "-o", "json", "--trace", "-", "--sizes=1MiB"},
		},
		{[]string{"bench", "--help"}, []string{"bench", "--help"}},
		{[]string{"simulate", "-h"}, []string{"simulate", "-h"}},
	} {
		stdout, stderr, err := runCLI(t, "trace\n", tc.args...)
		if got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); !slices.Equal(got, tc.want) {
			t.Errorf("ringcachectl %q ran %s with %q, want %q", tc.args, PluginName, got, tc.want)
		}
		if stderr != "trace\n" {
			t.Errorf("ringcachectl %q: the plugin's stderr is %q, want its stdin %q", tc.args, stderr, "trace\n")
		}
		if exit, ok := errors.AsType[*ExitError](err); !ok || exit.Code != 3 {
			t.Errorf("ringcachectl %q: err = %v, want an *ExitError with code 3", tc.args, err)
		}
	}
}

func TestPlugin_SuccessIsNoError(t *testing.T) {
	fakePlugin(t, "0")
	if _, _, err := runCLI(t, "", "simulate"); err != nil {
		t.Fatalf("simulate with a plugin that exits 0: %v", err)
	}
}

// Cancelling the command interrupts the plugin as Ctrl-C does, so bench can
// still report what it measured; its exit status then counts.
func TestPlugin_CancelInterruptsIt(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\ntrap 'echo interrupted; exit 0' INT\necho started\nread -r line\necho 'not interrupted'\n"
	if err := os.WriteFile(filepath.Join(dir, PluginName), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	stdin, block, err := os.Pipe() // the plugin's read waits until the test ends
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	defer block.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, outW := io.Pipe()
	cmd := NewRootCommand()
	cmd.SetArgs([]string{"bench"})
	cmd.SetIn(stdin)
	cmd.SetOut(outW)
	cmd.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() {
		done <- cmd.ExecuteContext(ctx)
		outW.Close()
	}()
	var lines []string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		lines = append(lines, sc.Text())
		if sc.Text() == "started" {
			cancel()
		}
	}
	if err := <-done; err != nil || !slices.Equal(lines, []string{"started", "interrupted"}) {
		t.Fatalf("cancelled bench: err %v, plugin printed %q; want no error after started, interrupted", err, lines)
	}
}

// `ringcachectl help bench` is the plugin's help.
func TestPlugin_HelpCommandAsksThePlugin(t *testing.T) {
	fakePlugin(t, "0")
	stdout, _, err := runCLI(t, "", "help", "bench")
	if err != nil || stdout != "bench\n--help\n" {
		t.Fatalf("help bench: stdout %q, err %v; want the plugin run with bench --help", stdout, err)
	}
}

// The root help still lists bench and simulate.
func TestPlugin_ListedInRootHelp(t *testing.T) {
	stdout := mustRun(t, "--help")
	for _, line := range []string{"  bench ", BenchShort, "  simulate ", SimulateShort} {
		if !strings.Contains(stdout, line) {
			t.Errorf("root help does not contain %q:\n%s", line, stdout)
		}
	}
}

// Without ringcachectl-bench, bench says where it looked and how to build it.
func TestPlugin_MissingSaysHowToBuildIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, args := range [][]string{{"bench"}, {"simulate", "--keys", "10"}} {
		_, _, err := runCLI(t, "", args...)
		if !errors.Is(err, ErrPluginNotFound) {
			t.Fatalf("%q without the plugin: err = %v, want ErrPluginNotFound", args, err)
		}
		for _, want := range []string{args[0] + " runs in a separate binary", "next to ", "on $PATH", "make build", "go build -o ringcachectl-bench ./cmd/ctl/bench"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %q does not contain %q", args, err, want)
			}
		}
	}
	_, stderr, err := runCLI(t, "", "help", "simulate")
	if err != nil || !strings.Contains(stderr, SimulateShort) || !strings.Contains(stderr, "make build") {
		t.Errorf("help simulate without the plugin: err %v, stderr %q; want its one-line help and how to build it", err, stderr)
	}
}
