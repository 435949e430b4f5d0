// Command ringcachectl is the operator CLI of a ringcache cluster; see
// package internal/ctl for the commands. bench and simulate run
// ringcachectl-bench (cmd/ctl/bench), found next to this binary or on $PATH.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/ringcache/ringcache/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes ringcachectl with args and returns the process exit status:
// 1 with "ringcachectl: <message>" on stderr when the command fails, or the
// status of ringcachectl-bench, which has printed its own message.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := ctl.NewRootCommand()
	cmd.SetArgs(args)
	cmd.SetIn(stdin)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		if exit, ok := errors.AsType[*ctl.ExitError](err); ok {
			return exit.Code
		}
		fmt.Fprintf(stderr, "ringcachectl: %v\n", err)
		return 1
	}
	return 0
}
