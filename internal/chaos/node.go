package chaos

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports every node uses in its own namespace.
const (
	grpcPort   = 7101
	gossipPort = 7201
)

// nodeArgs is the one place that builds a node's command line. A flag every
// node needs goes here, in one line.
func nodeArgs(n *Node, join []string, extra []string) []string {
	args := []string{
		"--name", n.Name,
		"--grpc-addr", n.GRPCAddr(),
		"--gossip-addr", netip.AddrPortFrom(n.Host.PeerIP, gossipPort).String(),
		"--join", strings.Join(join, ","),
		"--data-dir", n.DataDir,
		"--config", n.Config,
		"--gossip-preset", "local",
		"--admin-addr", "", // no HTTP port: the suite uses gRPC Admin and health
		"--max-memory", "64MiB",
		// The lab's addresses are not loopback: plaintext needs saying so.
		// The lab network is the test's own namespaces and bridges.
		"--insecure",
	}
	return append(args, extra...)
}

// Node is one ringcached process in its own namespace. It keeps its name,
// addresses and data directory across restarts; each start writes a new
// log file <dir>/<name>.<start>.log.
type Node struct {
	Name    string
	Host    *Host
	DataDir string
	Config  string // path of ringcache.yaml

	bin   string
	join  []string
	extra []string
	dir   string

	mu      sync.Mutex
	pid     int
	done    chan struct{} // closed when the current process has exited
	waitErr error
	starts  int
	stopped bool // SIGSTOP sent, no SIGCONT yet
}

// GRPCAddr is the node's gRPC address on the peer network.
func (n *Node) GRPCAddr() string { return netip.AddrPortFrom(n.Host.PeerIP, grpcPort).String() }

// Start launches the node; it must not be running.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil && !closed(n.done) {
		return fmt.Errorf("start %s: still running", n.Name)
	}
	n.starts++
	logPath := filepath.Join(n.dir, n.Name+"."+strconv.Itoa(n.starts)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := n.Host.Command(n.bin, nodeArgs(n, n.join, n.extra)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The node dies with the test binary, even one killed by -timeout
	// (Sweep removes its namespace on the next run). The parent-death
	// signal fires when the forking OS thread ends, and the runtime ends
	// threads whose locked goroutine exits (Host.do's): so the fork and
	// the wait happen on a thread locked to one goroutine for the
	// process's whole life.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		n.mu.Lock()
		n.waitErr = err
		n.mu.Unlock()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.pid = cmd.Process.Pid
	n.done, n.stopped = done, false
	return nil
}

// Running reports whether the process is alive (possibly stopped).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.done != nil && !closed(n.done)
}

// signal sends sig to the running process.
func (n *Node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil || closed(n.done) {
		return fmt.Errorf("%s is not running", n.Name)
	}
	if err := syscall.Kill(n.pid, sig); err != nil {
		return fmt.Errorf("%v %s: %w", sig, n.Name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.stopped = true
	case syscall.SIGCONT:
		n.stopped = false
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() error {
	if err := n.signal(syscall.SIGKILL); err != nil {
		return err
	}
	return n.wait(10 * time.Second)
}

// Pause stops the process (SIGSTOP); Resume continues it (SIGCONT).
func (n *Node) Pause() error  { return n.signal(syscall.SIGSTOP) }
func (n *Node) Resume() error { return n.signal(syscall.SIGCONT) }

// Terminate sends SIGTERM and waits up to timeout for a clean exit.
func (n *Node) Terminate(timeout time.Duration) error {
	if err := n.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := n.wait(timeout); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.waitErr != nil {
		return fmt.Errorf("%s exited with %v after SIGTERM, want status 0", n.Name, n.waitErr)
	}
	return nil
}

func (n *Node) wait(timeout time.Duration) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %s after a signal", n.Name, timeout)
	}
}

// Exited returns the exit error of a process that is gone, or nil while it
// runs (or exited cleanly).
func (n *Node) Exited() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil || !closed(n.done) {
		return false, nil
	}
	return true, n.waitErr
}

// destroy kills the process, stopped or not, and waits for it.
func (n *Node) destroy() {
	if !n.Running() {
		return
	}
	n.mu.Lock()
	if n.stopped {
		_ = syscall.Kill(n.pid, syscall.SIGCONT)
	}
	n.mu.Unlock()
	if err := n.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = n.wait(10 * time.Second)
	}
}

// LogTail returns the last max bytes of the node's current log.
func (n *Node) LogTail(max int) string {
	n.mu.Lock()
	path := filepath.Join(n.dir, n.Name+"."+strconv.Itoa(n.starts)+".log")
	n.mu.Unlock()
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
