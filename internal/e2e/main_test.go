package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/pgtest"
)

// Paths of the binaries built by TestMain. ringcachectl runs
// ringcachectl-bench, built next to it, for bench and simulate.
var (
	ringcachedBin   string
	ringcachectlBin string
	demoseedBin     string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode (starts real processes)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "ringcache-e2e-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// pgtest.Run runs the tests and stops the PostgreSQL server shared by
	// the durability tests (started on first use).
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinaries builds the four commands into dir with one `go build`, so
// they compile and link in parallel. They are built without -race: the race
// detector covers the test process only.
func buildBinaries(dir string) error {
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/ringcache/ringcache/cmd/node",
		"github.com/ringcache/ringcache/cmd/ctl",
		"github.com/ringcache/ringcache/cmd/ctl/bench",
		"github.com/ringcache/ringcache/internal/tools/demoseed",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	// go build names each binary after its package directory.
	ringcachedBin = filepath.Join(dir, "ringcached")
	ringcachectlBin = filepath.Join(dir, "ringcachectl")
	demoseedBin = filepath.Join(dir, "demoseed")
	benchBin := filepath.Join(dir, "ringcachectl-bench")
	for from, to := range map[string]string{"node": ringcachedBin, "ctl": ringcachectlBin, "bench": benchBin} {
		if err := os.Rename(filepath.Join(dir, from), to); err != nil {
			return err
		}
	}
	fmt.Printf("e2e: built ringcached, ringcachectl, ringcachectl-bench and demoseed in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
