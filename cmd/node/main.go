// Command ringcached runs one ringcache node. See `ringcached --help`.
package main

import (
	"fmt"
	"os"

	"github.com/ringcache/ringcache/internal/daemon"
)

func main() {
	if err := daemon.NewCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ringcached:", err)
		os.Exit(1)
	}
}
