package membership

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// watchTransport wraps memberlist's transport to see, during a join attempt,
// whether any seed answered. memberlist.Join flattens every cause into text
// ("failed to join …: %v"), so the error alone cannot tell a seed that is
// not up from a seed that refused this node; the connection can: a seed
// that refused (another key, encryption on one side only, another protocol
// version) sent bytes back before the join failed, and one that is not up
// sent none.
//
// It also closes the connections in flight when it shuts down, so a join
// waiting on a silent seed, or the push of a leaving mark to a silent peer,
// does not hold Shutdown for memberlist's TCPTimeout; and it drops the
// packets sent once it is shut down. memberlist shuts its transport down
// before it stops its gossip and probe timers, so one that fires in between
// wrote to the closed socket and logged an error ("Failed to send gossip
// to …: use of closed network connection") on a clean stop.
type watchTransport struct {
	memberlist.NodeAwareTransport
	probe    atomic.Pointer[joinProbe]
	shutdown sync.Once
	err      error

	// mu is read-locked by packet sends, so one in flight finishes before
	// Shutdown closes the socket, and the ones after see closed.
	mu     sync.RWMutex
	conns  map[*watchedConn]struct{} // TCP connections open
	closed bool                      // shut down: no dial, packets dropped
}

// joinProbe records what one join attempt saw.
type joinProbe struct {
	self     string // this node's gossip address; never dialled as a seed
	answered atomic.Bool
}

// errSelfSeed stops a join attempt from dialling this node itself (a seed
// list or DNS name that includes it): such a "join" always succeeds and says
// nothing about the cluster.
var errSelfSeed = errors.New("membership: seed is this node's own address")

// newWatchTransport wraps mc.Transport, or a NetTransport it creates on
// mc.BindAddr. When it picks the port (BindPort 0) it records it in mc, as
// memberlist does for the transport it creates.
func newWatchTransport(mc *memberlist.Config) (*watchTransport, error) {
	t := mc.Transport
	if t == nil {
		nt, err := newNetTransport(mc)
		if err != nil {
			return nil, err
		}
		t = nt
	}
	nat, ok := t.(memberlist.NodeAwareTransport)
	if !ok {
		nat = nodeAware{t}
	}
	return &watchTransport{NodeAwareTransport: nat, conns: map[*watchedConn]struct{}{}}, nil
}

func newNetTransport(mc *memberlist.Config) (*memberlist.NetTransport, error) {
	nc := &memberlist.NetTransportConfig{BindAddrs: []string{mc.BindAddr}, BindPort: mc.BindPort, Logger: mc.Logger}
	// With port 0 the TCP listener picks a port that UDP may find taken;
	// memberlist retries its own transport ten times for that, and so do we.
	tries := 1
	if mc.BindPort == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		if nt, err = memberlist.NewNetTransport(nc); err == nil {
			if mc.BindPort == 0 {
				mc.BindPort = nt.GetAutoBindPort()
				if mc.AdvertisePort == 0 {
					mc.AdvertisePort = mc.BindPort
				}
			}
			return nt, nil
		}
	}
	return nil, err
}

// DialAddressTimeout is memberlist's one way out over TCP (joins, push/pull,
// fallback probes). During a join attempt it watches the connection; it
// keeps every connection open until it is closed, so Shutdown can close
// those in flight (a join, or the push of a leaving mark to a peer that
// stopped answering).
func (t *watchTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	p := t.probe.Load()
	if p != nil && a.Addr == p.self {
		return nil, errSelfSeed
	}
	conn, err := t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return conn, err
	}
	wc := &watchedConn{Conn: conn, probe: p, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		conn.Close()
		return nil, net.ErrClosed
	}
	t.conns[wc] = struct{}{}
	return wc, nil
}

// DialTimeout routes through DialAddressTimeout.
func (t *watchTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// WriteToAddress sends a packet, or drops it once the transport is shut
// down (a lost UDP packet, to memberlist).
func (t *watchTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return time.Now(), nil
	}
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

// WriteTo routes through WriteToAddress.
func (t *watchTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// Shutdown closes the connections in flight and shuts the wrapped
// transport down, once.
func (t *watchTransport) Shutdown() error {
	t.shutdown.Do(func() {
		t.mu.Lock()
		t.closed = true
		for c := range t.conns {
			c.Conn.Close()
		}
		t.mu.Unlock()
		t.err = t.NodeAwareTransport.Shutdown()
	})
	return t.err
}

type watchedConn struct {
	net.Conn
	probe *joinProbe // nil outside a join attempt
	t     *watchTransport
}

func (c *watchedConn) Close() error {
	c.t.mu.Lock()
	delete(c.t.conns, c)
	c.t.mu.Unlock()
	return c.Conn.Close()
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && c.probe != nil {
		c.probe.answered.Store(true)
	}
	return n, err
}

// nodeAware adapts a plain Transport, as memberlist's own shim does.
type nodeAware struct{ memberlist.Transport }

func (t nodeAware) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t nodeAware) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}
