package ctl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// PluginName is the binary that holds bench and simulate: cmd/ctl/bench,
// built by `make build` as bin/ringcachectl-bench.
const PluginName = "ringcachectl-bench"

// The one-line help of the commands of ringcachectl-bench, which
// ringcachectl lists among its own.
const (
	BenchShort    = "Load a cluster (or a Redis server) with Gets and Sets and report throughput and latency"
	SimulateShort = "Replay a key trace (or a Zipf workload) against a range of cache sizes: hit rate vs. size, and its knee (simulate ring: the partition table per cluster size)"
)

// ErrPluginNotFound means ringcachectl-bench is neither next to the running
// ringcachectl nor on $PATH.
var ErrPluginNotFound = errors.New(PluginName + " not found")

// ExitError reports that ringcachectl-bench ran and exited with Code. It has
// printed its own error, so the caller exits with Code and prints nothing.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited with status %d", PluginName, e.Code)
}

// newPluginCommand returns the command name of ringcachectl-bench. It takes
// its flags and arguments unparsed and runs `ringcachectl-bench name
// ARGS...`: the global flags, wherever they stand, are the plugin's too, and
// help, output, errors, exit status and shell completion are the plugin's.
func newPluginCommand(name, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:                name,
		Short:              short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlugin(cmd, append([]string{name}, args...))
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return completePlugin(cmd, append(append([]string{name}, args...), toComplete))
		},
	}
	// `ringcachectl help bench` shows the plugin's help.
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		if err := runPlugin(cmd, []string{name, "--help"}); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s\n\n%v\n", short, err)
		}
	})
	return cmd
}

// runPlugin runs ringcachectl-bench with args and cmd's standard streams.
// Cancelling cmd's context interrupts it, as Ctrl-C does, so that bench can
// still report what it measured.
func runPlugin(cmd *cobra.Command, args []string) error {
	path, err := findPlugin()
	if err != nil {
		return fmt.Errorf("%s runs in a separate binary: %w", args[0], err)
	}
	c := exec.CommandContext(cmd.Context(), path, args...)
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	c.Cancel = func() error { return c.Process.Signal(os.Interrupt) }
	err = c.Run()
	if st := c.ProcessState; st != nil {
		if st.Success() {
			return nil
		}
		if code := st.ExitCode(); code > 0 {
			return &ExitError{Code: code}
		}
	}
	return fmt.Errorf("%s: %w", PluginName, err)
}

// completePlugin asks ringcachectl-bench for the shell completions of args
// (`ringcachectl-bench __complete bench --con`). Cobra has already offered
// the global flags, so those are dropped from the plugin's answer.
func completePlugin(cmd *cobra.Command, args []string) ([]cobra.Completion, cobra.ShellCompDirective) {
	path, err := findPlugin()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out bytes.Buffer
	c := exec.CommandContext(cmd.Context(), path, append([]string{cobra.ShellCompRequestCmd}, args...)...)
	c.Stdout = &out
	if err := c.Run(); err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	// One completion a line, then ":DIRECTIVE".
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	last, ok := strings.CutPrefix(lines[len(lines)-1], ":")
	directive, err := strconv.Atoi(last)
	if !ok || err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var comps []cobra.Completion
	for _, comp := range lines[:len(lines)-1] {
		flag, _, _ := strings.Cut(comp, "\t") // a completion may carry "\tdescription"
		global := cmd.InheritedFlags()
		if name, ok := strings.CutPrefix(flag, "--"); ok && global.Lookup(name) != nil {
			continue
		}
		if short, ok := strings.CutPrefix(flag, "-"); ok && len(short) == 1 && global.ShorthandLookup(short) != nil {
			continue
		}
		comps = append(comps, comp)
	}
	return comps, cobra.ShellCompDirective(directive)
}

// findPlugin returns the path of ringcachectl-bench: the one in the
// directory of the running executable (`make build` puts both in bin/),
// else the first on $PATH.
func findPlugin() (string, error) {
	where := ""
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		// LookPath of a path checks that it is an executable file.
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(exe), PluginName)); err == nil {
			return p, nil
		}
		where = "next to " + exe + " "
	}
	if p, err := exec.LookPath(PluginName); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w %sor on $PATH; build it with `make build` (bin/%s), "+
		"or with `go build -o %s ./cmd/ctl/bench` in the ringcache repository and put it next to ringcachectl",
		ErrPluginNotFound, where, PluginName, PluginName)
}
