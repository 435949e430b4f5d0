// Package benchctl implements ringcachectl-bench, the binary that holds the
// bench and simulate commands of ringcachectl. They need libraries an
// operator's CLI should not carry (gonum/plot, a progress bar, go-redis, the
// PostgreSQL and SQLite drivers), so ringcachectl runs this binary for them
// with its command line unchanged (see package ctl, plugin.go): the root
// command here is named ringcachectl and takes the same global flags, so
// `ringcachectl bench ...` and `ringcachectl-bench bench ...` are the same
// command.
//
// bench drives load through the Go client or at a Redis server (package
// loadgen), with subcommands stampede and memory; simulate replays a trace
// against a range of cache sizes, locally (package sim), and simulate ring
// measures the partition table at a range of cluster sizes (package ringsim).
package benchctl

import (
	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/ctl"
)

// NewRootCommand returns the command tree of ringcachectl-bench. The default
// of --addr is read from RINGCACHE_ADDR when the command is built.
func NewRootCommand() *cobra.Command {
	root, g := ctl.NewRoot("Benchmark a ringcache cluster and plan its capacity",
		ctl.PluginName+" holds the bench and simulate commands of ringcachectl, which runs\n"+
			"it for them: `ringcachectl bench ...` is `"+ctl.PluginName+" bench ...`.")
	root.AddCommand(newBenchCommand(g), newSimulateCommand(g))
	return root
}
