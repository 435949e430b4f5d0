package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres says PostgreSQL's initdb and pg_ctl (or, as root, the
// postgres user and runuser) are missing: the suite cannot run.
var ErrNoPostgres = errors.New("chaos: PostgreSQL is not available")

// pgPort is the port PostgreSQL listens on in its namespace.
const pgPort = 5432

// Postgres is a PostgreSQL server in its own namespace, on the database
// network only. It is initdb'd into a directory of its own under the
// system's temporary directory (the postgres user must be able to enter
// it), trusts connections from the database network as user postgres, and
// keeps PostgreSQL's durability defaults. As root, initdb and pg_ctl run as
// the postgres user through runuser, since PostgreSQL refuses root; the
// tools are found as internal/pgtest finds them.
type Postgres struct {
	host         *Host
	dir, data    string
	initdb, ctl  string
	runAs        bool
	uid, gid     int
	log          *slog.Logger
	databaseName string
}

// StartPostgres initdb's and starts a server on h (which must be on the
// database network) and creates database "chaos".
func StartPostgres(ctx context.Context, h *Host, log *slog.Logger) (*Postgres, error) {
	p := &Postgres{host: h, runAs: os.Geteuid() == 0, log: log, databaseName: "chaos"}
	var err error
	if p.initdb, p.ctl, err = findPostgresTools(); err != nil {
		return nil, err
	}
	if p.runAs {
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("%w: running as root needs runuser to drop to user postgres", ErrNoPostgres)
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs a postgres user: %v", ErrNoPostgres, err)
		}
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
	}
	// The directory name starts with the run's namespace prefix, so Sweep
	// removes it when this process dies without cleaning up.
	if p.dir, err = os.MkdirTemp("", h.NS+"-*"); err != nil {
		return nil, err
	}
	p.data = filepath.Join(p.dir, "data")
	if p.runAs {
		if err := os.Chown(p.dir, p.uid, p.gid); err != nil {
			p.Stop()
			return nil, err
		}
	}
	if out, err := p.run(false, p.initdb, "-D", p.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		p.Stop()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\n# chaos\nlisten_addresses = '%s'\nport = %d\nunix_socket_directories = '%s'\nmax_connections = 60\n", h.DBIP, pgPort, p.dir)
	hba := fmt.Sprintf("\n# chaos: the database network\nhost all all %s trust\n", netip.PrefixFrom(h.DBIP, 24).Masked())
	if err := appendFile(filepath.Join(p.data, "postgresql.conf"), conf); err != nil {
		p.Stop()
		return nil, err
	}
	if err := appendFile(filepath.Join(p.data, "pg_hba.conf"), hba); err != nil {
		p.Stop()
		return nil, err
	}
	logPath := filepath.Join(p.dir, "postgres.log")
	if out, err := p.run(true, p.ctl, "start", "-D", p.data, "-l", logPath, "-w", "-t", "60"); err != nil {
		tail, _ := os.ReadFile(logPath)
		p.Stop()
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail)
	}
	if err := p.waitReady(ctx, p.adminDSN()); err != nil {
		p.Stop()
		return nil, err
	}
	conn, err := pgx.Connect(ctx, p.adminDSN())
	if err != nil {
		p.Stop()
		return nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+p.databaseName); err != nil {
		p.Stop()
		return nil, fmt.Errorf("create database: %w", err)
	}
	return p, nil
}

// DSN is the URL of the test database, reachable from the root namespace
// and from every node.
func (p *Postgres) DSN() string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&connect_timeout=2",
		netip.AddrPortFrom(p.host.DBIP, pgPort), p.databaseName)
}

func (p *Postgres) adminDSN() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=2", netip.AddrPortFrom(p.host.DBIP, pgPort))
}

// Stop shuts the server down (pg_ctl stop -m immediate) and removes its
// directory. Processes left over are killed with the namespace.
func (p *Postgres) Stop() {
	if _, err := os.Stat(filepath.Join(p.data, "postmaster.pid")); err == nil {
		if out, err := p.run(false, p.ctl, "stop", "-D", p.data, "-m", "immediate", "-w", "-t", "30"); err != nil {
			p.log.Warn("pg_ctl stop", "err", err, "out", string(out))
			killNamespace(p.host.NS)
		}
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

func (p *Postgres) waitReady(ctx context.Context, dsn string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, dsn)
		if err == nil {
			err = conn.Ping(cctx)
			conn.Close(context.Background())
		}
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("PostgreSQL on %s not ready: %w", p.host.DBIP, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a PostgreSQL tool, as user postgres when we are root, inside the
// server's namespace when inNS.
func (p *Postgres) run(inNS bool, tool string, args ...string) ([]byte, error) {
	argv := append([]string{tool}, args...)
	if p.runAs {
		argv = append([]string{"runuser", "-u", "postgres", "--"}, argv...)
	}
	var cmd *exec.Cmd
	if inNS {
		cmd = p.host.Command(argv[0], argv[1:]...)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	cmd.Dir = p.dir // the postgres user may not be able to enter our working directory
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

// findPostgresTools finds initdb and pg_ctl on PATH, else in the newest
// /usr/lib/postgresql/<version>/bin (as internal/pgtest does).
func findPostgresTools() (initdb, pgctl string, err error) {
	initdb, err1 := exec.LookPath("initdb")
	pgctl, err2 := exec.LookPath("pg_ctl")
	if err1 != nil || err2 != nil {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
		if len(dirs) == 0 {
			return "", "", fmt.Errorf("%w: initdb and pg_ctl are not on PATH or in /usr/lib/postgresql/*/bin", ErrNoPostgres)
		}
		initdb, pgctl = filepath.Join(dirs[0], "initdb"), filepath.Join(dirs[0], "pg_ctl")
	}
	// pg_ctl finds the postgres binary next to its own resolved path.
	for _, p := range []*string{&initdb, &pgctl} {
		if *p, err = filepath.EvalSymlinks(*p); err != nil {
			return "", "", fmt.Errorf("%w: %v", ErrNoPostgres, err)
		}
	}
	return initdb, pgctl, nil
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// sweepDirs removes the PostgreSQL directories of runs whose process is gone.
func sweepDirs(log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), namePrefix+"*"))
	for _, dir := range dirs {
		base := filepath.Base(dir)
		if !strings.Contains(base, "-pg-") || !stale(base) {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			log.Info("sweep: removed a crashed run's directory", "dir", dir)
		}
	}
}

func appendFile(name, text string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
