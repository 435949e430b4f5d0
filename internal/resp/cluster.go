package resp

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/ringcache/ringcache/pkg/ring"
)

// Topology is the cluster as the RESP door shows it to Redis Cluster
// clients: which node owns which hash slots, and where their RESP ports
// are. Its owner (the node) rebuilds the view when the ring changes.
type Topology interface {
	// View returns the current view, nil while there is none (the node
	// has not joined yet). A View is never modified once returned.
	View() *View
}

// TopologyFunc adapts a function to a Topology.
type TopologyFunc func() *View

// View calls f.
func (f TopologyFunc) View() *View { return f() }

// Node is a cluster node as Redis clients know it.
type Node struct {
	// ID is the node's 40-hex-digit Redis node ID (NodeID of its name).
	ID   string
	Name string
	// Addr is its RESP address, host:port.
	Addr string
	// Settling marks an owner that has not yet published that it routes by
	// the view's table: it would refuse a client's ops as not ready, so
	// its keys are served here (forwarded to it) rather than answered with
	// MOVED. CLUSTER replies name it as the owner all the same.
	Settling bool
}

// NodeID returns the Redis node ID of the node called name: the SHA-1 of
// the name, in hex, so every node names every other the same way.
func NodeID(name string) string {
	sum := sha1.Sum([]byte(name))
	return hex.EncodeToString(sum[:])
}

// SlotRange is a run of slots one node owns.
type SlotRange struct {
	Start, End uint16 // inclusive
	Owner      Node
}

// View is one immutable snapshot of slot ownership.
type View struct {
	// Version increases with every change (CLUSTER INFO's epoch).
	Version uint64
	Self    Node
	// Ranges cover slots 0 to 16383, in order.
	Ranges []SlotRange
}

// SelfView is the view of a node that owns every slot.
func SelfView(self Node, version uint64) *View {
	return &View{Version: version, Self: self, Ranges: []SlotRange{{Start: 0, End: ring.Slots - 1, Owner: self}}}
}

// OwnerOf returns the node that owns slot.
func (v *View) OwnerOf(slot uint16) Node {
	i := sort.Search(len(v.Ranges), func(i int) bool { return v.Ranges[i].End >= slot })
	if i == len(v.Ranges) {
		return Node{}
	}
	return v.Ranges[i].Owner
}

// nodes returns the distinct owners, self first.
func (v *View) nodes() []Node {
	out := []Node{v.Self}
	seen := map[string]bool{v.Self.ID: true}
	for _, r := range v.Ranges {
		if !seen[r.Owner.ID] {
			seen[r.Owner.ID] = true
			out = append(out, r.Owner)
		}
	}
	return out
}

// redirected answers MOVED (or CROSSSLOT) for a cluster-aware connection
// when keys are owned by another node, and reports whether it did. Keys of
// several slots that this node all owns are served, as a superset of
// Redis; keys of several slots owned elsewhere get CROSSSLOT. Keys of an
// owner still settling into the view's table are served (forwarded).
func (c *conn) redirected(keys [][]byte) bool {
	if !c.cluster || c.s.cfg.Topology == nil {
		return false
	}
	v := c.s.cfg.Topology.View()
	if v == nil {
		return false
	}
	var moved Node
	var slot uint16
	sameSlot, settling := true, false
	for i, k := range keys {
		s := ring.Slot(string(k))
		if i == 0 {
			slot = s
		} else if s != slot {
			sameSlot = false
		}
		if o := v.OwnerOf(s); o.ID != v.Self.ID {
			settling = settling || o.Settling
			if moved.ID == "" {
				moved = o
			}
		}
	}
	switch {
	case moved.ID == "" || settling:
		return false
	case !sameSlot:
		c.replyErr(errCrossSlot)
	default:
		c.replyErr("MOVED " + strconv.Itoa(int(slot)) + " " + moved.Addr)
	}
	return true
}

// cmdClusterMode is READONLY, READWRITE and ASKING: they mark the
// connection cluster-aware.
func cmdClusterMode(c *conn, _ [][]byte) {
	if c.s.cfg.Topology == nil {
		c.replyErr(errClusterOff)
		return
	}
	c.cluster = true
	c.replySimple("OK")
}

// cmdCluster is CLUSTER SLOTS, SHARDS, NODES, INFO, MYID and KEYSLOT; any
// of them marks the connection cluster-aware.
func cmdCluster(c *conn, argv [][]byte) {
	if c.s.cfg.Topology == nil {
		c.replyErr(errClusterOff)
		return
	}
	c.cluster = true
	sub := argv[1]
	if is(sub, "KEYSLOT") {
		if len(argv) != 3 {
			c.replyErr(errArity("cluster|keyslot"))
			return
		}
		slot := ring.Slot(string(argv[2]))
		c.reply(func(w *writer) { w.int(int64(slot)) })
		return
	}
	v := c.s.cfg.Topology.View()
	if v == nil {
		c.replyErr("CLUSTERDOWN The cluster is down: this node has not joined its cluster yet")
		return
	}
	switch {
	case is(sub, "SLOTS"):
		c.reply(func(w *writer) { writeSlots(w, v) })
	case is(sub, "SHARDS"):
		c.reply(func(w *writer) { writeShards(w, v) })
	case is(sub, "NODES"):
		text := nodesText(v)
		c.reply(func(w *writer) { w.verbatim(text) })
	case is(sub, "INFO"):
		n := len(v.nodes())
		text := fmt.Sprintf("cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:%d\r\ncluster_slots_ok:%d\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n"+
			"cluster_known_nodes:%d\r\ncluster_size:%d\r\ncluster_current_epoch:%d\r\ncluster_my_epoch:%d\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n",
			ring.Slots, ring.Slots, n, n, v.Version, v.Version)
		c.reply(func(w *writer) { w.verbatim(text) })
	case is(sub, "MYID"):
		id := v.Self.ID
		c.reply(func(w *writer) { w.bulkString(id) })
	default:
		c.replyErr(errSubcommand(sub, "CLUSTER"))
	}
}

func hostPort(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// writeSlots writes CLUSTER SLOTS: [start, end, [host, port, id]] per range.
func writeSlots(w *writer, v *View) {
	w.array(len(v.Ranges))
	for _, r := range v.Ranges {
		host, port := hostPort(r.Owner.Addr)
		w.array(3)
		w.int(int64(r.Start))
		w.int(int64(r.End))
		w.array(3)
		w.bulkString(host)
		w.int(int64(port))
		w.bulkString(r.Owner.ID)
	}
}

// writeShards writes CLUSTER SHARDS: one shard per node, with its slots.
func writeShards(w *writer, v *View) {
	nodes := v.nodes()
	w.array(len(nodes))
	for _, n := range nodes {
		var slots []uint16
		for _, r := range v.Ranges {
			if r.Owner.ID == n.ID {
				slots = append(slots, r.Start, r.End)
			}
		}
		host, port := hostPort(n.Addr)
		w.mapHeader(2)
		w.bulkString("slots")
		w.array(len(slots))
		for _, s := range slots {
			w.int(int64(s))
		}
		w.bulkString("nodes")
		w.array(1)
		w.mapHeader(7)
		w.bulkString("id")
		w.bulkString(n.ID)
		w.bulkString("port")
		w.int(int64(port))
		w.bulkString("ip")
		w.bulkString(host)
		w.bulkString("endpoint")
		w.bulkString(host)
		w.bulkString("role")
		w.bulkString("master")
		w.bulkString("replication-offset")
		w.int(0)
		w.bulkString("health")
		w.bulkString("online")
	}
}

// nodesText is CLUSTER NODES: a line per node with its slot ranges.
func nodesText(v *View) string {
	var b strings.Builder
	for _, n := range v.nodes() {
		flags := "master"
		if n.ID == v.Self.ID {
			flags = "myself,master"
		}
		// There is no cluster bus: show Redis's default bus port (the
		// client port + 10000), or 0 where that is no port.
		_, port := hostPort(n.Addr)
		bus := port + 10000
		if bus > 65535 {
			bus = 0
		}
		fmt.Fprintf(&b, "%s %s@%d %s - 0 0 %d connected", n.ID, n.Addr, bus, flags, v.Version)
		for _, r := range v.Ranges {
			if r.Owner.ID != n.ID {
				continue
			}
			if r.Start == r.End {
				fmt.Fprintf(&b, " %d", r.Start)
			} else {
				fmt.Fprintf(&b, " %d-%d", r.Start, r.End)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
