package table

import (
	"errors"
	"fmt"

	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// table is a partition table as the protocol carries it.
type table struct {
	r    *ring.Ring
	prev *ring.Ring // the one r was computed from; nil when not known
	// since holds, for each member of r, the version of the first table
	// of the unbroken run of tables up to r that has the member; nil, or
	// a member missing, when not known (a table of a node of an older
	// version).
	since map[string]uint64
}

// after returns the since of next, computed from base (next's members
// that base lacks enter at next).
func (base table) after(next *ring.Ring) map[string]uint64 {
	since := make(map[string]uint64, len(next.Members()))
	for _, m := range next.Members() {
		switch s, ok := base.since[m.Name]; {
		case base.r == nil || !base.r.Has(m.Name):
			since[m.Name] = next.Version()
		case ok:
			since[m.Name] = s
		}
	}
	return since
}

// LeftOut reports whether the cluster routed by a table without self
// while self routed by old, a table with it, so that r, which has self,
// takes self back: self entered r's run of tables after old. A node that
// never saw the tables between old and r (pushes missed under load, a
// pull of a later table) still learns it. Without since (a coordinator of
// an older version), r's own parent, prev, tells: a table without self.
// A node's first table (old nil) is no return: a new process has nothing
// cached from before.
func LeftOut(self string, old, prev, r *ring.Ring, since map[string]uint64) bool {
	if old == nil || !old.Has(self) || !r.Has(self) {
		return false
	}
	if s, ok := since[self]; ok {
		return newer(s, old.Version())
	}
	return prev != nil && !prev.Has(self)
}

// ErrBad marks a table that cannot be routed by.
var ErrBad = errors.New("bad partition table")

// fromMessage returns the table m carries.
func (c *Coordinator) fromMessage(m *pb.Table) (table, error) {
	if m == nil {
		return table{}, fmt.Errorf("%w: none sent", ErrBad)
	}
	var t table
	var err error
	if t.r, err = c.fromWire(m.Members, m.Owners, m.Version); err != nil {
		return table{}, err
	}
	if len(m.PreviousOwners) > 0 {
		if t.prev, err = c.fromWire(m.PreviousMembers, m.PreviousOwners, m.PreviousVersion); err != nil {
			return table{}, err
		}
	}
	if len(m.MemberSince) > 0 {
		if len(m.MemberSince) != len(m.Members) {
			return table{}, fmt.Errorf("%w: %d member versions for %d members", ErrBad, len(m.MemberSince), len(m.Members))
		}
		t.since = make(map[string]uint64, len(m.Members))
		for i, n := range m.Members {
			if v := m.MemberSince[i]; v != 0 {
				t.since[n.Name] = v
			}
		}
	}
	return t, nil
}

func (c *Coordinator) fromWire(members []*pb.RingNode, owners []uint32, version uint64) (*ring.Ring, error) {
	ms := make([]ring.Member, len(members))
	for i, m := range members {
		ms[i] = ring.Member{Name: m.Name, Addr: m.GrpcAddr}
	}
	r, err := ring.FromOwners(c.cfg.Ring, ms, owners, version)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBad, err)
	}
	return r, nil
}

// message is t on the wire.
func message(t table, hlc uint64) *pb.Table {
	r := t.r
	m := &pb.Table{Version: r.Version(), PartitionCount: uint32(r.PartitionCount()), Owners: r.Owners(), Hlc: hlc, Members: wireMembers(r)}
	if t.prev != nil {
		m.PreviousVersion, m.PreviousOwners, m.PreviousMembers = t.prev.Version(), t.prev.Owners(), wireMembers(t.prev)
	}
	if len(t.since) > 0 {
		m.MemberSince = make([]uint64, len(r.Members()))
		for i, mb := range r.Members() {
			m.MemberSince[i] = t.since[mb.Name] // 0: not known
		}
	}
	return m
}

func wireMembers(r *ring.Ring) []*pb.RingNode {
	out := make([]*pb.RingNode, 0, len(r.Members()))
	for _, m := range r.Members() {
		out = append(out, &pb.RingNode{Name: m.Name, GrpcAddr: m.Addr})
	}
	return out
}
