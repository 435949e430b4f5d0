package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports for the processes these tests start come from just below the
// kernel's ephemeral range, never from port 0. A port asked of the kernel
// (net.Listen on :0) is free again once the picker closes it, and again
// once a node killed with -9 is gone; meanwhile every other test process on
// the machine binds :0 too (go test runs packages side by side), and the
// in-process clusters of pkg/node and clustertest name their nodes n1, n2…
// like the fleets here: one landing on a killed node's gossip port would
// answer the survivors' probes for that name, and they would never mark it
// failed. Below the ephemeral range no bind(:0) lands, and this process
// hands each port out once, so two fleets of one run never share one
// either.
var ports struct {
	sync.Mutex
	given    map[int]bool
	low, top int // [low, top): the range picked from
}

// portRange returns the range ports are picked from: the 16384 ports below
// the kernel's ephemeral range, or [10000, 26384) when that range cannot be
// read or starts too low to leave room below it.
func portRange() (low, top int) {
	top = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				top = v
			}
		}
	}
	if top < 16384+10000 {
		return 10000, 26384 // overlaps a low ephemeral range; still handed out once
	}
	return top - 16384, top
}

// freeLoopbackPort returns a loopback port not handed out before by this
// process and free, for TCP and, when udp (a gossip port), for UDP too, at
// the time of the call.
func freeLoopbackPort(udp bool) (int, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
		ports.low, ports.top = portRange()
	}
	for range 1000 {
		p := ports.low + rand.IntN(ports.top-ports.low)
		if ports.given[p] {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ok := true
		if udp {
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				ok = false
			} else {
				u.Close()
			}
		}
		l.Close()
		if ok {
			ports.given[p] = true
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port in [%d, %d) after 1000 tries", ports.low, ports.top)
}

// pickPorts returns n gRPC ports (TCP) and n gossip ports (TCP and UDP).
func pickPorts(n int) (grpc, gossip []int, err error) {
	for range n {
		p, err := freeLoopbackPort(false)
		if err != nil {
			return nil, nil, err
		}
		grpc = append(grpc, p)
	}
	for range n {
		p, err := freeLoopbackPort(true)
		if err != nil {
			return nil, nil, err
		}
		gossip = append(gossip, p)
	}
	return grpc, gossip, nil
}

// freeAddr returns a loopback TCP address for a process to listen on.
func freeAddr() (string, error) {
	p, err := freeLoopbackPort(false)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}
