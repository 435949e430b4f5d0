// Command ringcachectl-bench holds the bench and simulate commands of
// ringcachectl, which runs it for them when it is next to ringcachectl or on
// $PATH (`make build` puts it in bin/). It is a binary of its own so that the
// operator CLI does not link their plotting, progress-bar, Redis and database
// libraries; see package internal/ctl/benchctl for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/ringcache/ringcache/internal/ctl/benchctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes ringcachectl-bench with args and returns the process exit
// status: 1 with "ringcachectl: <message>" on stderr when the command fails,
// as ringcachectl itself reports it (it runs this binary for bench and
// simulate and prints nothing more).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := benchctl.NewRootCommand()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "ringcachectl: %v\n", err)
		return 1
	}
	return 0
}
