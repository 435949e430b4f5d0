package clustertest

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

var errCut = errors.New("clustertest: link cut")

// Network cuts and heals links between nodes, for gossip and gRPC alike.
// Addresses are the ones nodes advertise; a link is cut in both directions.
type Network struct {
	mu    sync.Mutex
	cut   map[[2]string]bool // {from, to} gossip or gRPC address pairs
	alias map[string]string  // any address of a node → its name
	conns map[[2]string][]net.Conn
	meters
}

func newNetwork() *Network {
	return &Network{cut: map[[2]string]bool{}, alias: map[string]string{}, conns: map[[2]string][]net.Conn{}}
}

func (nw *Network) register(name string, addrs ...string) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for _, a := range addrs {
		nw.alias[a] = name
	}
}

func (nw *Network) blocked(from, to string) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.cut[[2]string{nw.alias[from], nw.alias[to]}]
}

// Cut severs a and b (node names) and closes their open gRPC connections.
func (nw *Network) Cut(a, b string) {
	nw.mu.Lock()
	nw.cut[[2]string{a, b}] = true
	nw.cut[[2]string{b, a}] = true
	var open []net.Conn
	for _, k := range [][2]string{{a, b}, {b, a}} {
		open = append(open, nw.conns[k]...)
		delete(nw.conns, k)
	}
	nw.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

// Heal restores every link.
func (nw *Network) Heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.cut)
}

// dialer returns a gRPC dialer for the node named self.
func (nw *Network) dialer(self string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		nw.mu.Lock()
		to := nw.alias[addr]
		cut := nw.cut[[2]string{self, to}]
		nw.mu.Unlock()
		if cut {
			return nil, errCut
		}
		raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		c := countedConn{raw, &nw.of(self).peer}
		nw.mu.Lock()
		k := [2]string{self, to}
		nw.conns[k] = append(nw.conns[k], c)
		nw.mu.Unlock()
		return c, nil
	}
}

// transport wraps memberlist's NetTransport and drops traffic on cut links.
type transport struct {
	*memberlist.NetTransport
	nw      *Network
	self    string
	packets chan *memberlist.Packet
	done    chan struct{}
	stopped chan struct{}
}

func newTransport(nw *Network, self string) (*transport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{"127.0.0.1"}, BindPort: 0})
	if err != nil {
		return nil, err
	}
	t := &transport{NetTransport: nt, nw: nw, self: self, packets: make(chan *memberlist.Packet), done: make(chan struct{}), stopped: make(chan struct{})}
	// Known by name before the node joins, so a link cut before it starts
	// holds for its join too.
	nw.register(self, t.addr())
	go t.filterPackets()
	return t, nil
}

func (t *transport) addr() string {
	ip, port, _ := t.NetTransport.FinalAdvertiseAddr("", 0)
	return net.JoinHostPort(ip.String(), itoa(port))
}

// filterPackets forwards packets on uncut links. After Shutdown starts it
// keeps draining, because NetTransport's listener blocks on sending a packet
// and its Shutdown waits for the listener.
func (t *transport) filterPackets() {
	in := t.NetTransport.PacketCh()
	for {
		select {
		case p := <-in:
			if t.nw.blocked(t.addr(), p.From.String()) {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
			}
		case <-t.done:
			for {
				select {
				case <-in:
				case <-t.stopped:
					return
				}
			}
		}
	}
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.nw.blocked(t.addr(), addr) {
		return time.Now(), nil // dropped, as a lossy network would
	}
	t.nw.of(t.self).packets.Add(int64(len(b)))
	return t.NetTransport.WriteTo(b, addr)
}

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.nw.blocked(t.addr(), addr) {
		return nil, errCut
	}
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countedConn{c, &t.nw.of(t.self).streams}, nil
}

func (t *transport) Shutdown() error {
	close(t.done)
	err := t.NetTransport.Shutdown()
	close(t.stopped)
	return err
}

// WriteToAddress and DialAddressTimeout shadow NetTransport's node-aware
// variants, which memberlist prefers when present.
func (t *transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func itoa(i int) string { return strconv.Itoa(i) }
