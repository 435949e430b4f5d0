package pgtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// process is a server started with initdb and pg_ctl in its own temporary
// directory: data/ holds the cluster, and the unix socket and logs sit next
// to it. owner.pid records the test binary so a later Start can tell an
// orphaned server from a live one.
type process struct {
	dir, data string
	port      int
	initdb    string
	pgctl     string
	runAs     bool // run the tools as user postgres via runuser (we are root)
	uid, gid  int
	log       string // current server log
}

const dirPattern = "ringcache-pgtest-*"

func startProcess() (*process, error) {
	p := &process{runAs: os.Geteuid() == 0}
	var err error
	if p.initdb, p.pgctl, err = findTools(); err != nil {
		return nil, err
	}
	if p.runAs {
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("%w: running as root needs runuser to drop to user postgres", errUnavailable)
		}
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root needs a postgres user (PostgreSQL refuses to run as root): %v", errUnavailable, err)
		}
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
	}
	reapOrphans(p)

	if p.dir, err = os.MkdirTemp("", dirPattern); err != nil {
		return nil, err
	}
	p.data = filepath.Join(p.dir, "data")
	if err := os.WriteFile(filepath.Join(p.dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		p.removeDir()
		return nil, err
	}
	if p.runAs {
		if err := os.Chown(p.dir, p.uid, p.gid); err != nil {
			p.removeDir()
			return nil, err
		}
	}
	if out, err := p.run(p.initdb, "-D", p.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		p.removeDir()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf("\n# pgtest\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n", p.dir)
	if err := appendFile(filepath.Join(p.data, "postgresql.conf"), conf); err != nil {
		p.removeDir()
		return nil, err
	}
	// The free port can be taken between choosing and binding it: retry.
	for attempt := 1; ; attempt++ {
		if p.port, err = freePort(); err != nil {
			p.removeDir()
			return nil, err
		}
		p.log = filepath.Join(p.dir, fmt.Sprintf("postgres-%d.log", attempt))
		out, err := p.run(p.pgctl, "start", "-D", p.data, "-l", p.log, "-w", "-t", "60", "-o", "-p "+strconv.Itoa(p.port))
		if err == nil {
			return p, nil
		}
		tail := p.logTail()
		if attempt < 3 && strings.Contains(tail, "could not bind") {
			continue
		}
		p.stop()
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, tail)
	}
}

// run runs a PostgreSQL tool, as user postgres when we are root.
func (p *process) run(tool string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if p.runAs {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", tool}, args...)...)
	} else {
		cmd = exec.Command(tool, args...)
	}
	cmd.Dir = p.dir // the postgres user may not be able to enter our working directory
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd.CombinedOutput()
}

// stop shuts the server down without a checkpoint and removes the directory.
func (p *process) stop() {
	if _, err := os.Stat(filepath.Join(p.data, "postmaster.pid")); err == nil {
		if _, err := p.run(p.pgctl, "stop", "-D", p.data, "-m", "immediate", "-w", "-t", "30"); err != nil {
			p.killPostmaster()
		}
	}
	p.removeDir()
}

// killPostmaster sends SIGQUIT (immediate shutdown) to the pid in
// postmaster.pid, for when pg_ctl stop failed.
func (p *process) killPostmaster() {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGQUIT)
	}
}

func (p *process) removeDir() {
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}

func (p *process) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// reapOrphans stops and removes servers whose test binary is gone (killed by
// a -timeout panic or a signal, so Stop never ran).
func reapOrphans(like *process) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		orphan := *like
		orphan.dir, orphan.data = dir, filepath.Join(dir, "data")
		orphan.stop()
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// findTools finds initdb and pg_ctl on PATH, else in the newest
// /usr/lib/postgresql/<version>/bin.
func findTools() (initdb, pgctl string, err error) {
	initdb, err1 := exec.LookPath("initdb")
	pgctl, err2 := exec.LookPath("pg_ctl")
	if err1 != nil || err2 != nil {
		dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
		sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
		if len(dirs) == 0 {
			return "", "", fmt.Errorf("%w: initdb and pg_ctl are not on PATH or in /usr/lib/postgresql/*/bin", errUnavailable)
		}
		initdb, pgctl = filepath.Join(dirs[0], "initdb"), filepath.Join(dirs[0], "pg_ctl")
	}
	// pg_ctl finds the postgres binary next to its own resolved path.
	for _, p := range []*string{&initdb, &pgctl} {
		if *p, err = filepath.EvalSymlinks(*p); err != nil {
			return "", "", fmt.Errorf("%w: %v", errUnavailable, err)
		}
	}
	return initdb, pgctl, nil
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
