// Package ring maps keys to owner nodes with consistent hashing and bounded
// loads (github.com/buraksezer/consistent).
//
// A Ring is an immutable snapshot: it is built once from a member list and
// never changes, so readers share it without locks and a membership change
// swaps in a new Ring atomically (an atomic.Pointer in the node). Keys hash (xxhash, 64-bit) to
// one of a fixed number of partitions; partitions are assigned to members so
// that no member owns more than Load × the average. Two nodes that see the
// same member set build identical rings.
package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Defaults for Config.
const (
	DefaultPartitionCount    = 271
	DefaultReplicationFactor = 20
	DefaultLoad              = 1.25
	// maxLoad caps how far New raises the load factor when the configured one
	// cannot place every partition.
	maxLoad = 8.0
)

// Errors returned by this package.
var (
	ErrNoMembers      = errors.New("ring: no members")
	ErrTooManyMembers = errors.New("ring: more members than partitions")
	ErrDuplicateName  = errors.New("ring: duplicate member name")
	ErrBadConfig      = errors.New("ring: invalid config")
)

// Config fixes the shape of the ring. Every node of a cluster must use the
// same Config, or their rings disagree.
type Config struct {
	// PartitionCount is the fixed number of partitions keys hash into.
	// Default 271. Must not change while a cluster runs.
	PartitionCount int
	// ReplicationFactor is the number of virtual points per member on the
	// hash circle. Default 20.
	ReplicationFactor int
	// Load bounds how unequal ownership may be: no member owns more than
	// Load × (partitions / members). Must be ≥ 1. Default 1.25.
	Load float64
}

// DefaultConfig returns the recommended configuration.
func DefaultConfig() Config {
	return Config{PartitionCount: DefaultPartitionCount, ReplicationFactor: DefaultReplicationFactor, Load: DefaultLoad}
}

// Validate reports whether c is usable. Zero fields take their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.PartitionCount < 1:
		return fmt.Errorf("%w: partition count %d must be positive", ErrBadConfig, c.PartitionCount)
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
	// Name identifies the node; it is what the ring hashes.
	Name string
	// Addr is the node's gRPC address.
	Addr string
}

// String implements consistent.Member.
func (m Member) String() string { return m.Name }

type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// Ring is an immutable snapshot of partition ownership. Its methods are safe
// for concurrent use.
type Ring struct {
	version uint64
	cfg     Config
	load    float64 // the load factor actually used
	owners  []Member
	members []Member // sorted by name
	counts  map[string]int
}

// New builds a ring over members. version is an opaque, increasing number
// that callers use to tell snapshots apart.
//
// buraksezer/consistent panics when the members cannot hold every partition
// within the load bound (its average uses integer division, so even Load=1
// can fail). New never panics: it retries with a higher load factor, up to 8,
// and otherwise returns an error.
func New(cfg Config, members []Member, version uint64) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if len(members) == 0 {
		return nil, ErrNoMembers
	}
	if len(members) > cfg.PartitionCount {
		return nil, fmt.Errorf("%w: %d members, %d partitions", ErrTooManyMembers, len(members), cfg.PartitionCount)
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateName, sorted[i].Name)
		}
	}
	cm := make([]consistent.Member, len(sorted))
	for i, m := range sorted {
		cm[i] = m
	}
	var (
		c    *consistent.Consistent
		err  error
		load = cfg.Load
	)
	for ; load <= maxLoad; load *= 1.25 {
		if c, err = build(cm, cfg, load); err == nil {
			break
		}
	}
	if c == nil {
		if err == nil {
			err = fmt.Errorf("%w: no load factor up to %g places every partition", ErrBadConfig, maxLoad)
		}
		return nil, err
	}
	r := &Ring{
		version: version,
		cfg:     cfg,
		load:    load,
		owners:  make([]Member, cfg.PartitionCount),
		members: sorted,
		counts:  make(map[string]int, len(sorted)),
	}
	for p := range r.owners {
		m := c.GetPartitionOwner(p).(Member)
		r.owners[p] = m
		r.counts[m.Name]++
	}
	return r, nil
}

func build(members []consistent.Member, cfg Config, load float64) (c *consistent.Consistent, err error) {
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
		Hasher:            hasher{},
	}), nil
}

// Version returns the version the ring was built with.
func (r *Ring) Version() uint64 { return r.version }

// PartitionCount returns the fixed number of partitions.
func (r *Ring) PartitionCount() int { return r.cfg.PartitionCount }

// LoadFactor returns the load bound in force; it exceeds Config.Load only
// when the configured bound could not place every partition.
func (r *Ring) LoadFactor() float64 { return r.load }

// Partition returns the partition key hashes into.
func (r *Ring) Partition(key []byte) int {
	return int(xxhash.Sum64(key) % uint64(r.cfg.PartitionCount))
}

// PartitionOf is Partition for a string key, without allocating.
func (r *Ring) PartitionOf(key string) int { return PartitionFor(key, r.cfg.PartitionCount) }

// Key is the string the ring hashes for key in namespace ns: the namespace,
// a zero byte and the key, so equal keys of different namespaces spread
// independently. Nodes and ring-aware clients must agree on it.
func Key(ns, key string) string { return ns + "\x00" + key }

// PartitionFor is the partition key hashes into among partitions: what every
// node computes, exported for clients that route keys themselves.
func PartitionFor(key string, partitions int) int {
	return int(xxhash.Sum64String(key) % uint64(partitions))
}

// Owner returns the member that owns key.
func (r *Ring) Owner(key string) Member { return r.owners[r.PartitionOf(key)] }

// PartitionOwner returns the owner of partition p, which must be in
// [0, PartitionCount).
func (r *Ring) PartitionOwner(p int) Member { return r.owners[p] }

// Members returns the members sorted by name. The caller must not modify it.
func (r *Ring) Members() []Member { return r.members }

// Has reports whether a member named name is on the ring.
func (r *Ring) Has(name string) bool { _, ok := r.counts[name]; return ok }

// Partitions returns how many partitions each member owns.
func (r *Ring) Partitions(name string) int { return r.counts[name] }

// Move is one partition whose owner differs between two rings.
type Move struct {
	Partition int
	From, To  Member
}

// Diff lists the partitions whose owner differs between old and new, in
// partition order. Rings of different partition counts share no partition
// identity, so every partition of new counts as moved.
func Diff(old, new *Ring) []Move {
	var moves []Move
	for p := range new.owners {
		if len(old.owners) != len(new.owners) {
			moves = append(moves, Move{Partition: p, To: new.owners[p]})
		} else if old.owners[p].Name != new.owners[p].Name {
			moves = append(moves, Move{Partition: p, From: old.owners[p], To: new.owners[p]})
		}
	}
	return moves
}
