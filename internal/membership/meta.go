package membership

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// meta is what a node publishes about itself in gossip metadata (memberlist
// caps it at 512 bytes).
type meta struct {
	GRPC    string `json:"grpc"`
	Leaving bool   `json:"leaving,omitempty"`
	// Since is when the node started (Unix nanoseconds): the oldest member
	// coordinates the partition table.
	Since int64 `json:"since,omitempty"`
	// Parts is the node's partition count; nodes of another partitioning
	// refuse it (and it them).
	Parts int `json:"parts,omitempty"`
	// DefNS is the node's default namespace of Redis keys, which decides
	// the slot of a key as much as the partition count does.
	DefNS string `json:"dns,omitempty"`
	// Table is the version of the partition table the node routes by,
	// published here only while a member of the version before table
	// messages (tables.go) is alive; TV marks a node that gossips it in
	// messages (1).
	Table uint64 `json:"table,omitempty"`
	TV    int    `json:"tv,omitempty"`
	// RESP is the node's Redis-protocol address, if it serves one.
	RESP string `json:"resp,omitempty"`
}

func (m *Membership) metaBytes() []byte {
	md := meta{
		GRPC: m.cfg.GRPCAddr, Leaving: m.isLeaving(), Since: m.since.UnixNano(),
		Parts: m.cfg.Partitions, DefNS: m.cfg.DefaultNamespace, RESP: m.cfg.RESPAddr, TV: 1,
	}
	if m.legacy.Load() {
		md.Table = m.table.Load()
	}
	b, _ := json.Marshal(md)
	return b
}

// republish re-advertises this node's metadata once a member that reads
// the table version from it is seen.
func (m *Membership) republish() {
	select {
	case <-m.stop:
		return
	default:
	}
	select {
	case <-m.stop:
		return
	case <-m.listReady:
	}
	if err := m.updateNode(time.Second); err != nil {
		m.log.Debug("metadata for a member of an older version not yet spread", "err", err)
	}
}

// compatible refuses a peer whose partitioning differs from this node's:
// their partition tables cannot describe one cluster.
func (m *Membership) compatible(n *memberlist.Node) error {
	if n.Name == m.cfg.Name || m.cfg.Partitions == 0 {
		return nil
	}
	var md meta
	if err := json.Unmarshal(n.Meta, &md); err != nil {
		return nil // no metadata (yet): nothing to compare
	}
	if md.Parts != 0 && md.Parts != m.cfg.Partitions {
		return fmt.Errorf("%w: node %s has %d partitions, this node %d; every node of a cluster needs the same ring.partitions", ErrIncompatible, n.Name, md.Parts, m.cfg.Partitions)
	}
	if md.Parts != 0 && md.DefNS != m.cfg.DefaultNamespace {
		return fmt.Errorf("%w: node %s hashes keys with default namespace %q, this node %q; every node of a cluster needs the same resp.default_namespace", ErrIncompatible, n.Name, md.DefNS, m.cfg.DefaultNamespace)
	}
	return nil
}

// guard is memberlist's AliveDelegate and MergeDelegate: it keeps nodes of
// another partitioning out of this node's cluster.
type guard struct{ m *Membership }

func (g guard) NotifyAlive(n *memberlist.Node) error { return g.m.compatible(n) }

func (g guard) NotifyMerge(peers []*memberlist.Node) error {
	for _, n := range peers {
		if err := g.m.compatible(n); err != nil {
			g.m.log.Error("refusing to merge with a cluster of another partitioning", "err", err)
			return err
		}
	}
	return nil
}
