// Package ring maps keys to owner nodes through a versioned partition table.
//
// A key's owner is a function of its Redis Cluster hash slot (Slot: CRC16
// of the key or of its {hash tag}, mod 16384), whichever door the key came
// in by: slots are grouped into PartitionCount partitions of contiguous slot
// ranges, and a Ring is an immutable table that names the owner of every
// partition, with a version. Readers share a Ring without locks; a change
// swaps in a new one atomically.
//
// Guarantees:
//   - Balance: in every table that New or Rebalance builds, each of N members
//     owns ⌊P/N⌋ or ⌈P/N⌉ of the P partitions.
//   - Minimal movement: Rebalance(prev, members) moves only the partitions
//     of members that left and the surplus of members above their share,
//     all to members below theirs: one join moves ⌊P/(N+1)⌋ partitions, one
//     leave the leaver's own.
//   - Determinism: the same inputs build the same table, whatever the order
//     of the members given.
//
// The table is not a function of the member set alone: it depends on the
// table it evolved from. The first one is placed by consistent hashing with
// bounded loads (github.com/buraksezer/consistent) and balanced; a
// coordinator derives each later one with Rebalance and publishes it, and
// the other nodes install what they receive with FromOwners (see pkg/node).
package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// Defaults and limits of Config.
const (
	// DefaultPartitionCount gives 4 slots per partition. The busiest of N
	// members owns ⌈P/N⌉, less than 1 + N/P times the mean: 1.022 at worst
	// up to 100 members, 1.05 up to 226 (2048 would reach 1.044 at 100,
	// 1024 breaks 1.05 from 60). A table is 8 KiB, a WatchRing message 4 to
	// 8 KiB.
	DefaultPartitionCount    = 4096
	MinPartitionCount        = 256
	MaxPartitionCount        = Slots
	DefaultReplicationFactor = 4
	DefaultLoad              = 1.25
	// maxLoad caps how far New raises the load factor of the initial
	// placement when the configured one cannot place every partition.
	maxLoad = 8.0
)

// Errors returned by this package.
var (
	ErrNoMembers      = errors.New("ring: no members")
	ErrTooManyMembers = errors.New("ring: more members than partitions")
	ErrDuplicateName  = errors.New("ring: duplicate member name")
	ErrBadConfig      = errors.New("ring: invalid config")
	ErrBadTable       = errors.New("ring: invalid partition table")
)

// Config fixes the shape of the ring. Every node of a cluster must use the
// same PartitionCount and DefaultNamespace, or they route keys differently.
type Config struct {
	// PartitionCount is the number of partitions, a power of two from 256
	// to 16384; partition p holds slots [p×16384/P, (p+1)×16384/P). Default
	// 4096. Must not change while a cluster runs.
	PartitionCount int
	// ReplicationFactor is the number of virtual points per member on the
	// hash circle of the initial placement, each the start of an arc of
	// contiguous slots. Default 4: fewer arcs are fewer slot ranges in a new
	// cluster's CLUSTER SLOTS (3 members: 10 ranges, against 39 at 20
	// points), and the shares are made exact afterwards whatever the
	// library's spread.
	ReplicationFactor int
	// Load is the bounded-load factor of the initial placement (≥ 1); the
	// table is then balanced to exact shares whatever it is. Default 1.25.
	Load float64
	// DefaultNamespace is the namespace of Redis keys that carry no
	// namespace prefix: its keys hash as themselves, any other namespace's
	// as "ns:key" (SlotKey). Default "".
	DefaultNamespace string
}

// DefaultConfig returns the recommended configuration.
func DefaultConfig() Config {
	return Config{PartitionCount: DefaultPartitionCount, ReplicationFactor: DefaultReplicationFactor, Load: DefaultLoad}
}

// Validate reports whether c is usable. Zero fields take their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch p := c.PartitionCount; {
	case p < MinPartitionCount || p > MaxPartitionCount || p&(p-1) != 0:
		return fmt.Errorf("%w: partition count %d must be a power of two from %d to %d", ErrBadConfig, p, MinPartitionCount, MaxPartitionCount)
	case c.ReplicationFactor < 1:
		return fmt.Errorf("%w: replication factor %d must be positive", ErrBadConfig, c.ReplicationFactor)
	case !(c.Load >= 1 && c.Load <= maxLoad): // also rejects NaN
		return fmt.Errorf("%w: load %.2f must be between 1 and %g", ErrBadConfig, c.Load, maxLoad)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.PartitionCount == 0 {
		c.PartitionCount = DefaultPartitionCount
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultReplicationFactor
	}
	if c.Load == 0 {
		c.Load = DefaultLoad
	}
	return c
}

// Member is a node on the ring.
type Member struct {
	// Name identifies the node; tables name owners by it.
	Name string
	// Addr is the node's gRPC address.
	Addr string
}

// Ring is an immutable partition table. Its methods are safe for
// concurrent use.
type Ring struct {
	version uint64
	cfg     Config
	load    float64  // the load factor of the initial placement
	members []Member // sorted by name
	index   map[string]int
	owners  []uint16 // member index per partition
	counts  []int    // partitions per member index

	replicasMu sync.Mutex
	replicas   map[int]*ReplicaTable // by copies
}

// Version returns the version the table was built with.
func (r *Ring) Version() uint64 { return r.version }

// VersionTagBits is how many low bits of a table version name its author
// (the coordinator that computed it, internal/table); the bits above count
// tables. Two coordinators on the two sides of a network partition may
// issue the same count: their versions differ and neither is newer.
const VersionTagBits = 16

// NewerVersion reports whether table version a counts past b.
func NewerVersion(a, b uint64) bool { return a>>VersionTagBits > b>>VersionTagBits }

// Config returns the configuration, with defaults filled in.
func (r *Ring) Config() Config { return r.cfg }

// PartitionCount returns the fixed number of partitions.
func (r *Ring) PartitionCount() int { return len(r.owners) }

// LoadFactor returns the load bound of the initial placement: Config.Load,
// unless it could not place every partition and New had to raise it.
func (r *Ring) LoadFactor() float64 { return r.load }

// Key is the routing key of key in namespace ns: the namespace, a zero byte
// and the key. Nodes use it as the store key too; PartitionOf and Owner
// take it apart again to find the slot.
func Key(ns, key string) string { return ns + "\x00" + key }

// PartitionFor returns the partition of key in namespace ns among
// partitions (a power of two from 256 to 16384), given the cluster's
// default namespace: the partition of Slot(SlotKey(defaultNS, ns, key)).
// It is what every node computes, for clients that route keys themselves.
func PartitionFor(defaultNS, ns, key string, partitions int) int {
	return PartitionOfSlot(slotOf(defaultNS, ns, key), partitions)
}

// PartitionOfSlot returns the partition that holds slot among partitions.
func PartitionOfSlot(slot uint16, partitions int) int {
	return int(slot) * partitions / Slots
}

// PartitionOfKey returns the partition of key in namespace ns: that of
// Key(ns, key), without building it.
func (r *Ring) PartitionOfKey(ns, key string) int {
	return PartitionFor(r.cfg.DefaultNamespace, ns, key, len(r.owners))
}

// PartitionOf returns the partition of a routing key (Key). A string
// without a zero byte is taken as a Redis key of the default namespace.
func (r *Ring) PartitionOf(routingKey string) int {
	var slot uint16
	if i := strings.IndexByte(routingKey, 0); i >= 0 {
		slot = slotOf(r.cfg.DefaultNamespace, routingKey[:i], routingKey[i+1:])
	} else {
		slot = Slot(routingKey)
	}
	return PartitionOfSlot(slot, len(r.owners))
}

// SlotPartition returns the partition that holds slot.
func (r *Ring) SlotPartition(slot uint16) int { return PartitionOfSlot(slot, len(r.owners)) }

// PartitionSlots returns the first and last slot of partition p.
func (r *Ring) PartitionSlots(p int) (first, last uint16) {
	per := Slots / len(r.owners)
	return uint16(p * per), uint16((p+1)*per - 1)
}

// Owner returns the member that owns a routing key (Key).
func (r *Ring) Owner(routingKey string) Member { return r.members[r.owners[r.PartitionOf(routingKey)]] }

// PartitionOwner returns the owner of partition p, which must be in
// [0, PartitionCount).
func (r *Ring) PartitionOwner(p int) Member { return r.members[r.owners[p]] }

// Members returns the members sorted by name. The caller must not modify it.
func (r *Ring) Members() []Member { return r.members }

// Has reports whether a member named name is on the ring.
func (r *Ring) Has(name string) bool { _, ok := r.index[name]; return ok }

// Partitions returns how many partitions the member named name owns.
func (r *Ring) Partitions(name string) int {
	if i, ok := r.index[name]; ok {
		return r.counts[i]
	}
	return 0
}

// Owners returns the table: for each partition, its owner's index in
// Members(). The slice is the caller's.
func (r *Ring) Owners() []uint32 {
	out := make([]uint32, len(r.owners))
	for p, o := range r.owners {
		out[p] = uint32(o)
	}
	return out
}

// FromOwners builds the ring of a table received from the member that
// computed it: owners[p] is the index in members of partition p's owner.
// It checks that cfg is valid, the members are distinct and every
// partition has an owner among them.
func FromOwners(cfg Config, members []Member, owners []uint32, version uint64) (*Ring, error) {
	cfg, sorted, err := prepare(cfg, members)
	if err != nil {
		return nil, err
	}
	if len(owners) != cfg.PartitionCount {
		return nil, fmt.Errorf("%w: %d owners for %d partitions", ErrBadTable, len(owners), cfg.PartitionCount)
	}
	pos := make([]int32, len(members)) // index in members → index in sorted
	for i, m := range members {
		j, _ := slices.BinarySearchFunc(sorted, m.Name, func(a Member, name string) int { return strings.Compare(a.Name, name) })
		pos[i] = int32(j)
	}
	table := make([]int32, len(owners))
	for p, o := range owners {
		if o >= uint32(len(members)) {
			return nil, fmt.Errorf("%w: partition %d owned by member %d of %d", ErrBadTable, p, o, len(members))
		}
		table[p] = pos[o]
	}
	return build(cfg, cfg.Load, sorted, table, version), nil
}

// prepare validates cfg and members and returns them ready to build on:
// defaults filled in, members sorted by name.
func prepare(cfg Config, members []Member) (Config, []Member, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	cfg = cfg.withDefaults()
	if len(members) == 0 {
		return cfg, nil, ErrNoMembers
	}
	if len(members) > cfg.PartitionCount {
		return cfg, nil, fmt.Errorf("%w: %d members, %d partitions", ErrTooManyMembers, len(members), cfg.PartitionCount)
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return cfg, nil, fmt.Errorf("%w: %q", ErrDuplicateName, sorted[i].Name)
		}
	}
	return cfg, sorted, nil
}

// build makes a Ring of a complete table: owners[p] indexes sorted.
func build(cfg Config, load float64, sorted []Member, owners []int32, version uint64) *Ring {
	r := &Ring{
		version: version,
		cfg:     cfg,
		load:    load,
		members: sorted,
		index:   make(map[string]int, len(sorted)),
		owners:  make([]uint16, len(owners)),
		counts:  make([]int, len(sorted)),
	}
	for i, m := range sorted {
		r.index[m.Name] = i
	}
	for p, o := range owners {
		r.owners[p] = uint16(o)
		r.counts[o]++
	}
	return r
}

// log2 returns the base-2 logarithm of a power of two.
func log2(n int) int { return bits.TrailingZeros(uint(n)) }
