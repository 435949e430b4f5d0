// Package pgtest gives tests a real, throwaway PostgreSQL server and a fresh
// database per test.
//
// A test package shares one server per test binary (starting one takes about
// two seconds) and stops it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDatabase(t) // CREATE DATABASE test_<pid>_<n>, dropped at cleanup
//		...
//	}
//
// Start gives a test its own server instead, stopped at the test's cleanup.
//
// The server is initdb'd into a temporary directory, listens on 127.0.0.1 on
// a free port (and on a unix socket in that directory only), trusts local
// connections as user postgres, and keeps PostgreSQL's durability defaults
// (fsync and synchronous_commit on). Running as root, initdb and pg_ctl run
// as the postgres user through runuser, since PostgreSQL refuses root.
// Readiness is polled, never slept for. Stop (pg_ctl stop -m immediate)
// removes the directory; servers left behind by a test binary that was
// killed are stopped and removed by the next Start.
//
// When RINGCACHE_TEST_PG_DSN holds a postgres:// URL, that server is used and
// none is started; databases are still created and dropped per test.
// When initdb or pg_ctl is missing the tests are skipped, or fail when the
// environment has CI=true.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

// EnvDSN names the environment variable that points tests at an existing
// server: a postgres:// URL of a role that may create databases.
const EnvDSN = "RINGCACHE_TEST_PG_DSN"

// Server is a running PostgreSQL server, started by this package or named by
// EnvDSN.
type Server struct {
	adminDSN string // URL of the maintenance database "postgres"
	proc     *process
	stopOnce sync.Once
	stopped  atomic.Bool // Stop ran on a server this package started
}

var (
	mainActive atomic.Bool
	dbSeq      atomic.Int64

	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Main runs the package's tests and stops the shared server afterwards,
// whatever their outcome; then, if they passed, it fails the run when a
// goroutine outlived them (goleak). Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that has more to clean up: it runs the tests,
// stops the shared server, checks for leaked goroutines (when the tests
// passed) and returns the exit code.
func Run(m *testing.M) int {
	mainActive.Store(true)
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}

// Shared returns the server shared by the whole test binary, starting it on
// first use. The package's TestMain must call Main, which stops it.
func Shared(t testing.TB) *Server {
	t.Helper()
	if !mainActive.Load() {
		t.Fatal("pgtest.Shared: the package's TestMain must call pgtest.Main(m) so the shared server is stopped; use pgtest.Start for a per-test server")
	}
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		fail(t, sharedErr)
	}
	return shared
}

// Start starts a server for this test alone and stops it at cleanup. When
// EnvDSN is set it returns that server instead.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		fail(t, err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewDatabase creates a fresh database on the shared server and returns its
// DSN (a postgres:// URL). The database is dropped at the test's cleanup.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return Shared(t).NewDatabase(t)
}

// DSN returns the URL of the server's maintenance database "postgres".
func (s *Server) DSN() string { return s.adminDSN }

// NewDatabase creates a fresh database and returns its DSN. The database is
// dropped (WITH (FORCE), closing leftover connections) at the test's cleanup,
// unless the server was stopped first (a test may Stop its own server to
// see how code copes with a database that went away).
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := s.admin("CREATE DATABASE " + name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if s.stopped.Load() {
			return // the test stopped the server; its directory is gone
		}
		if err := s.admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(s.adminDSN)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Stop stops a server this package started and removes its directory. It
// is idempotent and does nothing for a server named by EnvDSN.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.proc != nil {
			s.stopped.Store(true)
			s.proc.stop()
		}
	})
}

func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.adminDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// errUnavailable marks environments without PostgreSQL: tests skip, or fail
// under CI=true.
var errUnavailable = errors.New("PostgreSQL is not available")

func fail(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, errUnavailable) {
		t.Fatalf("pgtest: %v", err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: %v (CI=true: failing instead of skipping; install PostgreSQL 15 or set %s)", err, EnvDSN)
	}
	t.Skipf("pgtest: %v (install PostgreSQL 15 or set %s)", err, EnvDSN)
}

func start() (*Server, error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvDSN)
		}
		s := &Server{adminDSN: dsn}
		if err := waitReady(s.adminDSN, 10*time.Second); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvDSN, redact(dsn), err)
		}
		return s, nil
	}
	p, err := startProcess()
	if err != nil {
		return nil, err
	}
	s := &Server{proc: p, adminDSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)}
	if err := waitReady(s.adminDSN, 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("server did not become ready: %w\n%s", err, p.logTail())
	}
	return s, nil
}

// waitReady polls until a connection succeeds or timeout passes.
func waitReady(dsn string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redact hides a password in a DSN for messages.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}
