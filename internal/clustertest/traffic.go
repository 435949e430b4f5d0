package clustertest

import (
	"net"
	"sync"
	"sync/atomic"
)

// Traffic is the bytes a node put on the network, by kind, counted at the
// test's seams: gossip packets (memberlist's UDP: probes, acks, gossip
// broadcasts), gossip streams (memberlist's TCP: joins, push-pull state
// exchanges, fallback probes) and peer gRPC (the node's calls to other
// nodes: partition table pushes and pulls, forwards, replication).
//
// Packets count as the bytes written; a stream or a peer connection
// counts both directions on the side that opened it, so the sum over
// every node is what crossed the network, each byte once.
type Traffic struct {
	GossipPackets int64
	GossipStreams int64
	Peer          int64
}

// Gossip is the gossip total, packets and streams.
func (t Traffic) Gossip() int64 { return t.GossipPackets + t.GossipStreams }

// Sub returns t minus an earlier reading u.
func (t Traffic) Sub(u Traffic) Traffic {
	return Traffic{GossipPackets: t.GossipPackets - u.GossipPackets, GossipStreams: t.GossipStreams - u.GossipStreams, Peer: t.Peer - u.Peer}
}

// Add returns t plus u.
func (t Traffic) Add(u Traffic) Traffic {
	return Traffic{GossipPackets: t.GossipPackets + u.GossipPackets, GossipStreams: t.GossipStreams + u.GossipStreams, Peer: t.Peer + u.Peer}
}

// counters are one node's running totals behind Traffic.
type counters struct {
	packets, streams, peer atomic.Int64
}

func (c *counters) read() Traffic {
	return Traffic{GossipPackets: c.packets.Load(), GossipStreams: c.streams.Load(), Peer: c.peer.Load()}
}

// meters holds the counters of a Network's nodes, by name.
type meters struct {
	mu    sync.Mutex
	nodes map[string]*counters
}

func (m *meters) of(name string) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[string]*counters{}
	}
	c, ok := m.nodes[name]
	if !ok {
		c = &counters{}
		m.nodes[name] = c
	}
	return c
}

// Traffic returns the bytes node name has put on the network so far.
func (nw *Network) Traffic(name string) Traffic { return nw.meters.of(name).read() }

// TotalTraffic returns the bytes every node has put on the network so far,
// including nodes that have stopped.
func (nw *Network) TotalTraffic() Traffic {
	nw.meters.mu.Lock()
	defer nw.meters.mu.Unlock()
	var t Traffic
	for _, c := range nw.meters.nodes {
		t = t.Add(c.read())
	}
	return t
}

// countedConn counts the bytes read and written on a connection.
type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countedConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	c.n.Add(int64(k))
	return k, err
}

func (c countedConn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	c.n.Add(int64(k))
	return k, err
}
