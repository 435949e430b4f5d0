package ring

// Successors returns the members that hold copies of partition p, n at
// most (all members when there are fewer): its owner, then the member that
// would own p if the owner were gone (its owner in Rebalance(r, members
// without the owner)), then the one that would own it if that one were
// gone too (in the Rebalance of that table), and so on. When owners fail
// one by one, each next owner is already the next successor.
//
// The first call for a given n computes the successors of every partition
// at once (ReplicaTable) and keeps them with the ring; later calls cost a
// lookup and an allocation.
func (r *Ring) Successors(p, n int) []Member { return r.ReplicaTable(n).Successors(p) }

// ReplicaTable holds the successors (Ring.Successors) of every partition
// of a table. It is immutable.
type ReplicaTable struct {
	copies  int
	members []Member
	idx     []uint16 // idx[p*copies+k]: index in members of p's k-th copy
}

// Copies returns how many members hold each partition.
func (t *ReplicaTable) Copies() int { return t.copies }

// Successors returns the members that hold partition p, its owner first.
func (t *ReplicaTable) Successors(p int) []Member {
	out := make([]Member, t.copies)
	for k := range out {
		out[k] = t.members[t.idx[p*t.copies+k]]
	}
	return out
}

// Copy returns the k-th holder of partition p: 0 is the owner.
func (t *ReplicaTable) Copy(p, k int) Member { return t.members[t.idx[p*t.copies+k]] }

// ReplicaTable returns the successors of every partition for n copies,
// clamped to [1, members]. It is computed once per ring and n: one
// Rebalance per member for n = 2; for n = 3 one more per pair of a
// partition's first two holders, at most min(P, N²).
func (r *Ring) ReplicaTable(n int) *ReplicaTable {
	n = min(max(n, 1), len(r.members))
	r.replicasMu.Lock()
	defer r.replicasMu.Unlock()
	if t := r.replicas[n]; t != nil {
		return t
	}
	t := &ReplicaTable{copies: n, members: r.members, idx: make([]uint16, len(r.owners)*n)}
	w := replicaWalk{t: t, out: make([]bool, len(r.members)), bufs: make([][]int32, n)}
	for d := range w.bufs {
		w.bufs[d] = make([]int32, len(r.owners))
	}
	parts := make([]int, len(r.owners))
	for p, o := range r.owners {
		w.bufs[0][p] = int32(o)
		parts[p] = p
	}
	w.walk(0, parts)
	if r.replicas == nil {
		r.replicas = map[int]*ReplicaTable{}
	}
	r.replicas[n] = t
	return t
}

// replicaWalk fills a ReplicaTable depth first: bufs[d] is the table after
// the first d holders of the partitions being visited have gone.
type replicaWalk struct {
	t    *ReplicaTable
	out  []bool // members gone at the current depth
	bufs [][]int32
}

// walk records the depth-th holder of parts, which all share the holders
// before it, and descends into the table without each of those holders.
func (w *replicaWalk) walk(depth int, parts []int) {
	owners, c := w.bufs[depth], w.t.copies
	for _, p := range parts {
		w.t.idx[p*c+depth] = uint16(owners[p])
	}
	if depth+1 == c {
		return
	}
	groups := make(map[int32][]int)
	var order []int32
	for _, p := range parts {
		o := owners[p]
		if groups[o] == nil {
			order = append(order, o)
		}
		groups[o] = append(groups[o], p)
	}
	next := w.bufs[depth+1]
	for _, o := range order {
		for p, q := range owners {
			if q == o {
				q = none
			}
			next[p] = q
		}
		w.out[o] = true
		balanceAmong(next, len(w.out), w.out)
		w.walk(depth+1, groups[o])
		w.out[o] = false
	}
}
