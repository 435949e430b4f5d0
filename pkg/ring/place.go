package ring

import (
	"encoding/binary"
	"fmt"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// New builds the first table of a cluster, one that has no table yet, over
// members. version is an opaque, increasing number that tells tables apart.
//
// buraksezer/consistent places the partitions on a hash circle with
// bounded loads, in slot order (partition p sits at p/P of the circle), so
// each member's arcs hold contiguous slot ranges; the table is then
// balanced to exact shares (⌊P/N⌋ or ⌈P/N⌉ each), moving as few partitions
// as that takes, at the edges of the ranges where it can. The library
// panics when the members cannot hold every partition within the load
// bound; New never panics: it retries with a higher load factor, up to 8,
// and otherwise returns an error.
func New(cfg Config, members []Member, version uint64) (*Ring, error) {
	cfg, sorted, err := prepare(cfg, members)
	if err != nil {
		return nil, err
	}
	cm := make([]consistent.Member, len(sorted))
	for i, m := range sorted {
		cm[i] = placed{key: memberKeyPrefix + m.Name, idx: int32(i)}
	}
	var (
		c    *consistent.Consistent
		load = cfg.Load
	)
	for ; load <= maxLoad; load *= 1.25 {
		if c, err = place(cm, cfg, load); err == nil {
			break
		}
	}
	if c == nil {
		if err == nil {
			err = fmt.Errorf("%w: no load factor up to %g places every partition", ErrBadConfig, maxLoad)
		}
		return nil, err
	}
	owners := make([]int32, cfg.PartitionCount)
	for p := range owners {
		owners[p] = c.GetPartitionOwner(p).(placed).idx
	}
	balance(owners, len(sorted))
	return build(cfg, load, sorted, owners, version), nil
}

func place(members []consistent.Member, cfg Config, load float64) (c *consistent.Consistent, err error) {
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("ring: cannot place %d partitions on %d members at load %.2f: %v",
				cfg.PartitionCount, len(members), load, p)
		}
	}()
	return consistent.New(members, consistent.Config{
		PartitionCount:    cfg.PartitionCount,
		ReplicationFactor: cfg.ReplicationFactor,
		Load:              load,
		Hasher:            circle{shift: 64 - log2(cfg.PartitionCount)},
	}), nil
}

// memberKeyPrefix makes every string consistent hashes for a member
// (String() plus a virtual point number) longer than the 8 bytes of a
// partition id, so that circle can tell the two apart.
const memberKeyPrefix = "ringcache/"

// placed is a member as consistent sees it.
type placed struct {
	key string // memberKeyPrefix + name
	idx int32  // index in the sorted members
}

func (m placed) String() string { return m.key }

// circle is the hasher of the initial placement. consistent hashes a
// partition id as 8 little-endian bytes: circle puts partition p at
// p × 2⁶⁴/P, so partitions lie on the circle in slot order and an arc
// holds a contiguous slot range. Member points (longer strings) hash with
// xxhash.
type circle struct{ shift int }

func (h circle) Sum64(b []byte) uint64 {
	if len(b) == 8 {
		return binary.LittleEndian.Uint64(b) << h.shift
	}
	return xxhash.Sum64(b)
}
