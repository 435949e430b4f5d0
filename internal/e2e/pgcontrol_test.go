package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ringcache/ringcache/internal/pgtest"
)

// pgControl stops and restarts, on the same port and data directory, a
// server started by pgtest.Start, so a test can take the database away and
// bring it back. pgtest.Server can only Stop for good (it removes the
// directory); this finds the server's data directory and binaries by asking
// the server itself and drives pg_ctl as pgtest does (as user postgres
// through runuser when we are root).
type pgControl struct {
	t        *testing.T
	adminDSN string
	port     string
	data     string // the cluster's data directory
	dir      string // its parent: pgtest's temporary directory, writable by the server's user
	pgctl    string
	runAs    bool
	down     bool
	restarts int
}

// controlPG returns a pgControl of s. It skips the test when s is an
// external server named by pgtest.EnvDSN, which the test must not stop.
func controlPG(t *testing.T, s *pgtest.Server) *pgControl {
	t.Helper()
	if os.Getenv(pgtest.EnvDSN) != "" {
		t.Skipf("%s names an external PostgreSQL server, which this test would have to stop", pgtest.EnvDSN)
	}
	u, err := url.Parse(s.DSN())
	if err != nil {
		t.Fatal(err)
	}
	c := &pgControl{t: t, adminDSN: s.DSN(), port: u.Port(), runAs: os.Geteuid() == 0}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var bindir string
	if err := conn.QueryRow(ctx, `SELECT current_setting('data_directory'), (SELECT setting FROM pg_config WHERE name = 'BINDIR')`).Scan(&c.data, &bindir); err != nil {
		t.Fatalf("ask the server for its data directory and binaries: %v", err)
	}
	c.dir, c.pgctl = filepath.Dir(c.data), filepath.Join(bindir, "pg_ctl")
	// Registered after pgtest's own cleanups, so it runs before them: a test
	// that failed with the server down brings it back for the database drop
	// and pgtest's Stop.
	t.Cleanup(func() {
		if c.down {
			c.Start()
		}
	})
	return c
}

func (c *pgControl) run(args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if c.runAs {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", c.pgctl}, args...)...)
	} else {
		cmd = exec.Command(c.pgctl, args...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

// Stop shuts the server down as a crash would (pg_ctl stop -m immediate)
// and returns once it no longer accepts connections.
func (c *pgControl) Stop() time.Duration {
	c.t.Helper()
	start := time.Now()
	if out, err := c.run("stop", "-D", c.data, "-m", "immediate", "-w", "-t", "30"); err != nil {
		c.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
	c.down = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.adminDSN); err == nil {
		conn.Close(context.Background())
		c.t.Fatal("PostgreSQL still accepts connections after pg_ctl stop")
	}
	return time.Since(start)
}

// Start starts the server again on the same port and data directory and
// returns once it accepts connections.
func (c *pgControl) Start() time.Duration {
	c.t.Helper()
	start := time.Now()
	c.restarts++
	log := filepath.Join(c.dir, fmt.Sprintf("postgres-restart-%d.log", c.restarts))
	if out, err := c.run("start", "-D", c.data, "-l", log, "-w", "-t", "60", "-o", "-p "+c.port); err != nil {
		tail, _ := os.ReadFile(log)
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, tail)
	}
	c.down = false
	eventually(c.t, 30*time.Second, "PostgreSQL accepts connections again", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.adminDSN)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		return conn.Ping(ctx)
	})
	return time.Since(start)
}
