package node

import (
	"math"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/ringcache/ringcache/internal/connlimit"
)

// Bounds on connections and streams (docs/operations.md, "Connections and
// streams"): the gRPC listener admits at most MaxConnections clients and
// PeerConnections more peers, closing the rest at once; gRPC closes
// connections that do not finish their handshake, sit idle or stop
// answering pings; every stream's send has a deadline (service.Guard);
// and the invalidation fan-out is bounded in subscribers and bytes
// (service.Hub). When the node cannot take a new client (out of file
// descriptors, or at MaxConnections) it reports not ready, on /readyz and
// the gRPC health service, until it can again.

// sendTimeoutStrikes is how many of its streams a client may leave
// unread past the send deadline before the node closes its connection:
// each such stream leaves up to 64 KiB queued in gRPC's transport until
// the connection closes, and a client that keeps opening streams it does
// not read must not pile them up. One stalled stream of a client that
// otherwise works ends with RESOURCE_EXHAUSTED and costs it nothing more.
const sendTimeoutStrikes = 4

// DefaultConnections is the default connection bound under an open-file
// limit of nofile: an eighth of the descriptors (at least 64) stay for the
// journal, the databases, gossip, the admin port and the node's own
// connections to its peers, and DefaultPeerConnections for peers'
// connections in. 0 (no limit known) gives DefaultMaxConnections.
func DefaultConnections(nofile uint64) int {
	if nofile == 0 || nofile > math.MaxInt32 {
		return DefaultMaxConnections
	}
	spare := max(64, nofile/8)
	return max(16, int(nofile)-int(spare)-DefaultPeerConnections)
}

// connectionOptions are the gRPC server's keepalive and handshake options.
func (c Config) connectionOptions() []grpc.ServerOption {
	kp := keepalive.ServerParameters{Time: c.KeepaliveTime, Timeout: c.KeepaliveTimeout}
	if c.IdleTimeout > 0 {
		kp.MaxConnectionIdle = c.IdleTimeout
	}
	if c.MaxConnectionAge > 0 {
		kp.MaxConnectionAge, kp.MaxConnectionAgeGrace = c.MaxConnectionAge, c.MaxConnectionAge/10
	}
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(c.HandshakeTimeout),
		grpc.KeepaliveParams(kp),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: c.KeepaliveMinClientInterval, PermitWithoutStream: true}),
	}
}

// limitListener bounds the connections of lis and sets the hub's bounds;
// listen calls it before anything is served.
func (n *Node) limitListener(lis net.Listener) *connlimit.Listener {
	cfg := n.cfg
	n.hub.MaxSubscribers = cfg.MaxWatchers
	n.hub.MaxBacklogBytes = cfg.WatchBacklogBytes
	n.hub.IsPeer = n.fromMemberHost
	n.conns = connlimit.Wrap(lis, connlimit.Config{
		Max: max(0, cfg.MaxConnections), Reserved: cfg.PeerConnections, Strikes: sendTimeoutStrikes,
		IsPeer: n.fromMemberHost, OnChange: n.acceptChanged, Logger: n.log,
	})
	n.sec.guard.SendTimeout = max(0, cfg.StreamSendTimeout)
	n.sec.guard.OnSendTimeout = func(addr net.Addr) { n.conns.Strike(addr) }
	return n.conns
}

// fromMemberHost reports whether addr is on the host of a cluster member.
func (n *Node) fromMemberHost(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || n.members == nil {
		return false
	}
	for _, m := range n.members.Members() {
		for _, a := range []string{m.GRPCAddr, m.GossipAddr} {
			if host, _, err := net.SplitHostPort(a); err == nil {
				if ip := net.ParseIP(host); ip != nil && ip.Equal(tcp.IP) {
					return true
				}
			}
		}
	}
	return false
}

// acceptErr returns why the node cannot take a new client, or nil.
func (n *Node) acceptErr() error {
	if n.conns == nil {
		return nil
	}
	return n.conns.Err()
}

// acceptChanged follows the listener into the gRPC health status.
func (n *Node) acceptChanged(err error) {
	if n.health == nil || n.closing.Load() {
		return
	}
	if err != nil {
		n.log.Warn("not ready: cannot take new clients", "err", err)
		n.notServing()
		return
	}
	n.log.Info("taking new clients again")
	n.setServing()
}
