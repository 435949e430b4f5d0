package engine

import (
	"slices"

	"github.com/ringcache/ringcache/pkg/ring"
)

// The replicas of a partition are the members that would own it if its
// owner were gone: its owner in the ring without its owner, then the owner
// in the ring without both, and so on. When gossip declares an owner dead,
// every node rebuilds exactly the ring without it, so the partition's new
// owner is its first replica, which already holds its pending writes: a
// takeover moves no data.

// replicaTable is, for one ring snapshot, each partition's replicas in
// order. Immutable once built.
type replicaTable struct {
	r      *ring.Ring
	chains [][]ring.Member
}

// replicasOf returns the first copies-1 replicas of partition p in r (fewer
// when r has fewer other members), computed once per ring snapshot.
func (e *Engine) replicasOf(r *ring.Ring, p int, copies int) []ring.Member {
	c := e.replicaTable(r).chains[p]
	return c[:min(len(c), max(0, copies-1))]
}

// replicaTable returns the table of r, building it on first use.
func (e *Engine) replicaTable(r *ring.Ring) *replicaTable {
	if t := e.replicas.Load(); t != nil && t.r == r {
		return t
	}
	depth := 1
	if e.repl != nil {
		depth = e.repl.depth
	}
	t := &replicaTable{r: r, chains: successors(r, depth)}
	e.replicas.Store(t)
	return t
}

// successors returns, for every partition of r, up to depth members that
// would own it in turn as its owner and those before them leave
// (ring.Ring.Successors: the owners of the partition tables the
// coordinator rebalances to as they go): the one place replicas are
// computed.
func successors(r *ring.Ring, depth int) [][]ring.Member {
	t := r.ReplicaTable(depth + 1)
	out := make([][]ring.Member, r.PartitionCount())
	for p := range out {
		out[p] = t.Successors(p)[1:]
	}
	return out
}

// changedPartitions returns, per partition, whether its owner or replicas
// differ between the tables (every partition when old is nil).
func changedPartitions(old, cur *replicaTable) []bool {
	out := make([]bool, len(cur.chains))
	for p := range out {
		out[p] = old == nil || len(old.chains) != len(cur.chains) ||
			old.r.PartitionOwner(p).Name != cur.r.PartitionOwner(p).Name ||
			!slices.EqualFunc(old.chains[p], cur.chains[p], func(a, b ring.Member) bool { return a.Name == b.Name && a.Addr == b.Addr })
	}
	return out
}

// targets returns the n members a write of partition p made on this node
// is copied to: the partition's owner when this node is not it (a
// forwarded write served on a ring that disagrees), then its replicas,
// never this node.
func (e *Engine) targets(r *ring.Ring, p, n int) []ring.Member {
	if n <= 0 {
		return nil
	}
	self := e.cfg.Self
	owner := r.PartitionOwner(p)
	out := make([]ring.Member, 0, n)
	if owner.Name != self {
		out = append(out, owner)
	}
	for _, m := range e.replicasOf(r, p, len(r.Members())) {
		if len(out) == n {
			break
		}
		if m.Name != self && m.Name != owner.Name {
			out = append(out, m)
		}
	}
	return out
}
