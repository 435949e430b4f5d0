package chaos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// namePrefix starts the name of every bridge, veth and network namespace
// this package creates. The 8 hex digits after it are the run id: the
// creating process's pid (6 digits) and a per-process sequence number (2),
// so a later run can tell a live run's devices from a crashed run's.
const namePrefix = "rkc"

var runSeq atomic.Uint32

// Link is one of a host's two network attachments.
type Link int

const (
	// PeerLink joins a node to the peer network: gossip, gRPC between
	// nodes, and the clients in the root namespace.
	PeerLink Link = iota
	// DBLink joins a node, or the database, to the database network.
	DBLink
)

func (l Link) String() string {
	if l == PeerLink {
		return "peer"
	}
	return "db"
}

// Network is the lab: two Linux bridges in the root namespace, the peer
// network and the database network, each with an address so the root
// namespace (the test's clients and checker) reaches every host, and one
// network namespace per host joined to the bridges by veth pairs. Cut
// detaches the root end of a host's veth from its bridge (`ip link set DEV
// nomaster`); Heal attaches it again. No iptables, nft or netem is needed.
//
// Two networks rather than one so that a node can be partitioned from its
// peers while it still reaches the database, as in issue 13's break 1; the
// database is isolated by cutting its own link.
type Network struct {
	id             string
	log            *slog.Logger
	peerBr, dbBr   string
	peerNet, dbNet netip.Prefix
	hosts          []*Host
}

// Host is one network namespace of the lab.
type Host struct {
	Name   string     // "n1", "pg"
	NS     string     // network namespace name
	PeerIP netip.Addr // zero when not on the peer network
	DBIP   netip.Addr // zero when not on the database network
	links  [2]string  // root-side veth names by Link
}

// NewNetwork sweeps what crashed earlier runs left behind, then creates the
// two bridges of a new run.
func NewNetwork(log *slog.Logger) (*Network, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	Sweep(log)
	n := &Network{id: fmt.Sprintf("%06x%02x", os.Getpid()&0xffffff, runSeq.Add(1)&0xff), log: log}
	n.peerBr, n.dbBr = n.name("pb"), n.name("db")
	var err error
	if n.peerNet, n.dbNet, err = pickSubnets(n.id); err != nil {
		return nil, err
	}
	for _, br := range []struct {
		name string
		net  netip.Prefix
	}{{n.peerBr, n.peerNet}, {n.dbBr, n.dbNet}} {
		if err := ipRun("link", "add", br.name, "type", "bridge"); err != nil {
			n.Close()
			return nil, err
		}
		gw := netip.PrefixFrom(br.net.Addr().Next(), br.net.Bits()) // .1
		if err := ipRun("addr", "add", gw.String(), "dev", br.name); err != nil {
			n.Close()
			return nil, err
		}
		if err := ipRun("link", "set", br.name, "up"); err != nil {
			n.Close()
			return nil, err
		}
	}
	log.Info("chaos network", "id", n.id, "peer", n.peerNet, "db", n.dbNet)
	return n, nil
}

func (n *Network) name(role string) string { return namePrefix + n.id + role }

// AddHost creates a namespace named after name with loopback up, on the
// peer network, the database network or both. Host addresses are .5 + the
// order of creation.
func (n *Network) AddHost(name string, peer, db bool) (*Host, error) {
	h := &Host{Name: name, NS: n.name("-" + name)}
	if err := ipRun("netns", "add", h.NS); err != nil {
		return nil, err
	}
	n.hosts = append(n.hosts, h)
	if err := ipRun("-n", h.NS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	octet := 4 + len(n.hosts)
	attach := func(l Link, br string, subnet netip.Prefix, dev, tag string) (netip.Addr, error) {
		h.links[l] = n.name(tag + strconv.Itoa(len(n.hosts)))
		ip := subnet.Addr().As4()
		ip[3] = byte(octet)
		addr := netip.AddrFrom4(ip)
		for _, args := range [][]string{
			{"link", "add", h.links[l], "type", "veth", "peer", "name", dev, "netns", h.NS},
			{"link", "set", h.links[l], "master", br},
			{"link", "set", h.links[l], "up"},
			{"-n", h.NS, "addr", "add", netip.PrefixFrom(addr, subnet.Bits()).String(), "dev", dev},
			{"-n", h.NS, "link", "set", dev, "up"},
		} {
			if err := ipRun(args...); err != nil {
				return netip.Addr{}, err
			}
		}
		return addr, nil
	}
	var err error
	if peer {
		if h.PeerIP, err = attach(PeerLink, n.peerBr, n.peerNet, "eth0", "p"); err != nil {
			return nil, err
		}
	}
	if db {
		if h.DBIP, err = attach(DBLink, n.dbBr, n.dbNet, "eth1", "d"); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Cut detaches h's link l from its bridge: h can no longer reach, or be
// reached from, anything on that network, the root namespace included.
func (n *Network) Cut(h *Host, l Link) error {
	return ipRun("link", "set", h.links[l], "nomaster")
}

// Heal attaches h's link l to its bridge again.
func (n *Network) Heal(h *Host, l Link) error {
	br := n.peerBr
	if l == DBLink {
		br = n.dbBr
	}
	return ipRun("link", "set", h.links[l], "master", br)
}

// Command returns a command that runs inside h's namespace (through `ip
// netns exec`, which execs it: the command's pid is the program's).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Dial connects to addr from inside h's namespace, so the connection
// stays up whatever happens to h's links: a client running next to its
// node.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.do(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// do runs fn on an OS thread switched into h's namespace; sockets fn
// creates belong to the namespace for good. The thread is never given back
// to the scheduler (it exits with its goroutine), and it is never the main
// thread, which the runtime would keep rather than end: a process whose
// main thread sat in a lab namespace would be listed, and killed, with it.
func (h *Host) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread: keep it busy so the retry runs on another.
			errc <- h.do(fn)
			runtime.UnlockOSThread()
			return
		}
		// Not unlocked: the thread exits with this goroutine.
		fd, err := unix.Open("/run/netns/"+h.NS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", h.NS, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", h.NS, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Close kills every process left in the run's namespaces and deletes their
// veths, the namespaces and the bridges.
func (n *Network) Close() error {
	var errs []error
	for _, h := range n.hosts {
		killNamespace(h.NS)
		// Deleting a veth deletes its peer at once; a namespace's own
		// devices go only when the kernel gets round to destroying it.
		for _, dev := range h.links {
			if dev != "" && linkExists(dev) {
				if err := ipRun("link", "del", dev); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if err := ipRun("netns", "del", h.NS); err != nil {
			errs = append(errs, err)
		}
	}
	n.hosts = nil
	for _, br := range []string{n.peerBr, n.dbBr} {
		if linkExists(br) {
			if err := ipRun("link", "del", br); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Sweep removes the namespaces, links and directories of earlier runs
// whose process is gone (a test binary killed by a timeout or a signal
// never ran its cleanup), killing what still runs in those namespaces.
// Runs of live processes, another engineer's for one, are left alone.
func Sweep(log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			ns, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if stale(ns) {
				killNamespace(ns)
				if err := ipRun("netns", "del", ns); err != nil {
					log.Warn("sweep: delete namespace", "ns", ns, "err", err)
				} else {
					log.Info("sweep: deleted a crashed run's namespace", "ns", ns)
				}
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			dev, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(dev) {
				if err := ipRun("link", "del", dev); err == nil {
					log.Info("sweep: deleted a crashed run's link", "dev", dev)
				}
			}
		}
	}
	sweepDirs(log)
}

// stale reports whether name was made by this package in a process that
// no longer exists.
func stale(name string) bool {
	pid, ok := ownerPID(name)
	return ok && !processAlive(pid)
}

// ownerPID returns the pid encoded in a name made by this package.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok || len(rest) < 8 {
		return 0, false
	}
	pid, err := strconv.ParseUint(rest[:6], 16, 32)
	if err != nil {
		return 0, false
	}
	return int(pid), true
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// killNamespace sends SIGKILL to every process in the namespace.
func killNamespace(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGCONT) // a stopped process dies too, but wake it for its children
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func linkExists(dev string) bool {
	return exec.Command("ip", "link", "show", dev).Run() == nil
}

// pickSubnets chooses two /24s in 10.0.0.0/8 that no address or route of
// the root namespace uses, starting from a hash of the run id so that
// concurrent runs start apart.
func pickSubnets(id string) (peer, db netip.Prefix, err error) {
	out, err := exec.Command("ip", "-4", "-o", "route", "show", "table", "all").Output()
	if err != nil {
		return peer, db, fmt.Errorf("list routes: %w", err)
	}
	used := string(out)
	h := fnv.New32a()
	h.Write([]byte(id))
	start := h.Sum32()
	for i := range uint32(4096) {
		v := (start + i) % 4096 // 10.<64..127>.<even>.0/24 and the odd one after it
		a, b := byte(64+v/64), byte(v%64)*2
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, a, b, 0}), 24)
		d := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, a, b + 1, 0}), 24)
		if !strings.Contains(used, fmt.Sprintf("10.%d.%d.", a, b)) && !strings.Contains(used, fmt.Sprintf("10.%d.%d.", a, b+1)) {
			return p, d, nil
		}
	}
	return peer, db, errors.New("chaos: no free /24 pair in 10.64.0.0/10")
}

// ipRun runs the ip command and returns its output in the error.
func ipRun(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
