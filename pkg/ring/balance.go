package ring

import (
	"fmt"
	"slices"
	"strings"
)

// Rebalance returns the table for a new member set derived from prev with
// the fewest moves that balance it: the partitions of members that left go
// to members below their share, members above their share give their
// surplus to members below theirs, and no other partition moves. Shares
// are ⌊P/N⌋ or ⌈P/N⌉; the larger ones go to the members that own the most
// already (ties by name), which is what makes the movement minimal.
//
// Among equally minimal tables it prefers the one with fewer slot ranges:
// a partition that moves extends a run its new owner has next to it where
// one exists, and is taken from the edge of its old owner's run rather
// than from the middle. Members are matched to prev's by name; their
// addresses are taken from members. The configuration is prev's.
func Rebalance(prev *Ring, members []Member, version uint64) (*Ring, error) {
	if prev == nil {
		return nil, fmt.Errorf("%w: no previous table (use New for the first one)", ErrBadTable)
	}
	cfg, sorted, err := prepare(prev.cfg, members)
	if err != nil {
		return nil, err
	}
	remap := make([]int32, len(prev.members)) // prev index → new index, or none
	for i, m := range prev.members {
		j, ok := slices.BinarySearchFunc(sorted, m.Name, func(a Member, name string) int { return strings.Compare(a.Name, name) })
		remap[i] = none
		if ok {
			remap[i] = int32(j)
		}
	}
	owners := make([]int32, len(prev.owners))
	for p, o := range prev.owners {
		owners[p] = remap[o]
	}
	balance(owners, len(sorted))
	return build(cfg, prev.load, sorted, owners, version), nil
}

// none marks a partition without an owner during balancing.
const none = -1

// balance completes and balances owners in place: every partition without
// an owner (none) and the surplus of members above their share go to the
// members below theirs, so that each of the n members ends with its share.
func balance(owners []int32, n int) { balanceAmong(owners, n, nil) }

// balanceAmong is balance among the members i with out[i] false (all when
// out is nil); the others own nothing before and after. The outcome is the
// one balance gives over the remaining members alone, renumbered in order.
func balanceAmong(owners []int32, n int, out []bool) {
	b := balancer{owners: owners, need: shares(owners, n, out)}
	b.fillUnowned()
	b.shedSurplus()
}

// shares returns, per member, how many partitions it must gain (positive)
// or give away (negative) to reach its share: ⌈P/m⌉ for the P mod m members
// that own the most (ties to the lower index), ⌊P/m⌋ for the others, where
// m is the number of members not out; 0 for members out.
func shares(owners []int32, n int, out []bool) []int {
	counts := make([]int, n)
	for _, o := range owners {
		if o != none {
			counts[o]++
		}
	}
	order := make([]int, 0, n)
	for i := range n {
		if out == nil || !out[i] {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return counts[b] - counts[a] })
	q, rem := len(owners)/len(order), len(owners)%len(order)
	need := make([]int, n)
	for rank, i := range order {
		target := q
		if rank < rem {
			target++
		}
		need[i] = target - counts[i]
	}
	return need
}

type balancer struct {
	owners []int32
	need   []int // > 0: partitions to gain; < 0: to give away
}

func (b *balancer) move(p int, to int32) {
	if from := b.owners[p]; from != none {
		b.need[from]++
	}
	b.owners[p] = to
	b.need[to]--
}

// neediest returns the member furthest below its share (lowest index
// among equals), or none when every member has its share.
func (b *balancer) neediest() int32 {
	best := int32(none)
	for i, k := range b.need {
		if k > 0 && (best == none || k > b.need[best]) {
			best = int32(i)
		}
	}
	return best
}

// fillUnowned hands out every run of partitions without an owner (what
// departed members held): from its left end to the member owning the
// partition before it while that one needs more, from its right end to the
// member after it likewise, and the rest in chunks to the neediest members.
func (b *balancer) fillUnowned() {
	o, last := b.owners, len(b.owners)-1
	for start := 0; start <= last; start++ {
		if o[start] != none {
			continue
		}
		end := start
		for end < last && o[end+1] == none {
			end++
		}
		lo, hi := start, end
		if lo > 0 {
			for l := o[lo-1]; lo <= hi && b.need[l] > 0; lo++ {
				b.move(lo, l)
			}
		}
		if hi < last {
			for r := o[hi+1]; lo <= hi && b.need[r] > 0; hi-- {
				b.move(hi, r)
			}
		}
		for lo <= hi {
			x := b.neediest()
			for k := b.need[x]; k > 0 && lo <= hi; k-- {
				b.move(lo, x)
				lo++
			}
		}
		start = end
	}
}

// shedSurplus moves the surplus of members above their share to members
// below theirs. It pushes boundaries first, which adds no slot range: a
// member that needs more takes the partition next to its own run from a
// member with surplus, sweeping left to right and right to left until
// nothing moves. When surplus remains with no such boundary, it seeds one
// (seed) and sweeps again.
func (b *balancer) shedSurplus() {
	o := b.owners
	surplus := 0
	for _, k := range b.need {
		if k < 0 {
			surplus -= k
		}
	}
	for surplus > 0 {
		moved := 0
		for p := 1; p < len(o); p++ {
			if to := o[p-1]; b.need[to] > 0 && b.need[o[p]] < 0 {
				b.move(p, to)
				moved++
			}
		}
		for p := len(o) - 2; p >= 0; p-- {
			if to := o[p+1]; b.need[to] > 0 && b.need[o[p]] < 0 {
				b.move(p, to)
				moved++
			}
		}
		if moved == 0 {
			moved = b.seed()
		}
		surplus -= moved
	}
}

// seed moves partitions of a member with surplus to the neediest member
// where no boundary joins them: a whole run when one fits both the giver's
// surplus and the taker's need (the longest such, so the giver loses a
// range as the taker gains one), else the end of the giver's longest run.
// It returns how many partitions moved.
func (b *balancer) seed() int {
	x := b.neediest()
	o := b.owners
	bestFit, fitLen := -1, 0 // start of the longest run that fits whole
	bestAny, anyLen := -1, 0 // start of the longest run of a giver
	for start := 0; start < len(o); {
		end := start + 1
		for end < len(o) && o[end] == o[start] {
			end++
		}
		if give := -b.need[o[start]]; give > 0 {
			n := end - start
			if n <= give && n <= b.need[x] && n > fitLen {
				bestFit, fitLen = start, n
			}
			if n > anyLen {
				bestAny, anyLen = start, n
			}
		}
		start = end
	}
	if bestFit >= 0 {
		for p := bestFit; p < bestFit+fitLen; p++ {
			b.move(p, x)
		}
		return fitLen
	}
	k := min(-b.need[o[bestAny]], b.need[x], anyLen)
	for p := bestAny + anyLen - k; p < bestAny+anyLen; p++ {
		b.move(p, x)
	}
	return k
}
