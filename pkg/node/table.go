package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The partition table. One member, the coordinator — the oldest alive
// member (earliest start, then lowest name), which every member can name
// from gossip alone — computes each table from the previous one with
// ring.Rebalance (few moves, exact shares) when the members change,
// stamps it with a higher version, and pushes it to every member
// (Peer.PushTable); members also pull it (Peer.GetTable) when gossip shows
// the coordinator, or anyone, routing by another version. So every node
// routes by the same table, and a join or leave moves only the partitions
// it must (docs/architecture.md).
//
// When the coordinator dies, the next oldest takes over: it first adopts
// the newest table any member routes by, then computes from it, so no
// table is lost with its author and versions only grow. Two coordinators
// on the two sides of a partition compute different tables; their
// versions differ in their low bits (the author's tag), and after the heal
// the one coordinator computes a table with a higher counter than both.
//
// A node that is not the coordinator reports ready only once it routes by
// the coordinator's current table.

const (
	// tagBits of a version tell its author apart; the rest count.
	tagBits = 16
	// tableTimeout bounds one push or pull of a table.
	tableTimeout = 3 * time.Second
	// metaTimeout bounds the spread of a new table version in gossip.
	metaTimeout = time.Second
)

// nextVersion returns the version after v, authored by name.
func nextVersion(v uint64, name string) uint64 {
	return (v>>tagBits+1)<<tagBits | (xxhash.Sum64String(name)&(1<<tagBits-1) | 1)
}

// newer reports whether version a's counter is above b's.
func newer(a, b uint64) bool { return a>>tagBits > b>>tagBits }

// coordinator returns the oldest of the alive members.
func coordinator(alive []membership.Member) (membership.Member, bool) {
	var best membership.Member
	found := false
	for _, m := range alive {
		if m.GRPCAddr == "" || m.Since.IsZero() {
			continue // not a node that speaks the table protocol
		}
		if !found || m.Since.Before(best.Since) || m.Since.Equal(best.Since) && m.Name < best.Name {
			best, found = m, true
		}
	}
	return best, found
}

// tableState is the ring loop's view of the table protocol.
type tableState struct {
	mu      sync.Mutex // serializes installs (ring loop, pushes, pulls)
	current bool       // the node routes by its coordinator's table
	prev    *ring.Ring // the table the current one was computed from; nil when none
	work    sync.Mutex // one reconcile at a time (the ring loop, a bootstrap alone)
}

// reconcile is the ring loop's step after a membership change.
func (n *Node) reconcile() {
	n.table.work.Lock()
	defer n.table.work.Unlock()
	if n.resp != nil {
		n.resp.view.Store(nil) // members' RESP addresses may have changed
	}
	alive := n.members.Alive()
	coord, ok := coordinator(alive)
	if !ok {
		return
	}
	if coord.Name == n.cfg.Name {
		if len(alive) == 1 && len(n.cfg.Join) > 0 && !n.joined.Load() {
			return // a node with seeds gets its table from their coordinator
		}
		n.coordinate(alive)
		return
	}
	cur := n.engine.Ring()
	if cur != nil && cur.Version() == coord.TableVersion {
		n.setTableCurrent(true)
		return
	}
	n.setTableCurrent(false)
	if coord.TableVersion != 0 {
		n.pull(ring.Member{Name: coord.Name, Addr: coord.GRPCAddr}, coord.Name)
	}
}

// coordinate computes, installs and pushes a table for the alive members,
// as the coordinator.
func (n *Node) coordinate(alive []membership.Member) {
	// Adopt first the newest table anyone routes by: a coordinator that
	// took over may lag the one that died.
	if holder, v := newestHolder(alive); holder.Name != "" && holder.Name != n.cfg.Name {
		if cur := n.engine.Ring(); cur == nil || newer(v, cur.Version()) {
			n.pull(ring.Member{Name: holder.Name, Addr: holder.GRPCAddr}, "")
		}
	}
	var ms []ring.Member
	for _, m := range alive {
		if m.GRPCAddr != "" && !m.Since.IsZero() {
			ms = append(ms, ring.Member{Name: m.Name, Addr: m.GRPCAddr})
		}
	}
	cur := n.engine.Ring()
	if cur != nil && sameMembers(cur.Members(), ms) {
		n.setTableCurrent(true)
		n.publish(cur)
		return
	}
	var next *ring.Ring
	var err error
	if cur == nil {
		next, err = ring.New(n.cfg.Ring, ms, nextVersion(0, n.cfg.Name))
	} else {
		next, err = ring.Rebalance(cur, ms, nextVersion(cur.Version(), n.cfg.Name))
	}
	if err != nil {
		if !n.closing.Load() {
			n.log.Error("cannot compute the partition table; keeping the previous one", "members", len(ms), "err", err)
		}
		return
	}
	n.install(cur, next)
	n.setTableCurrent(true)
	n.publish(next)
	for _, m := range next.Members() {
		if m.Name != n.cfg.Name {
			n.wg.Go(func() { n.push(m, next) })
		}
	}
}

// newestHolder returns a member routing by the table with the highest
// counter, and that version.
func newestHolder(alive []membership.Member) (membership.Member, uint64) {
	var best membership.Member
	var v uint64
	for _, m := range alive {
		if m.GRPCAddr != "" && newer(m.TableVersion, v) {
			best, v = m, m.TableVersion
		}
	}
	return best, v
}

func sameMembers(a, b []ring.Member) bool {
	if len(a) != len(b) {
		return false
	}
	b = slices.Clone(b)
	slices.SortFunc(b, func(x, y ring.Member) int { return strings.Compare(x.Name, y.Name) })
	return slices.Equal(a, b) // a is sorted by name (ring.Members)
}

// install makes r, computed from prev (nil: none), the table the node
// routes by, if it is not older than the current one, and returns whether
// it did.
func (n *Node) install(prev, r *ring.Ring) bool {
	n.table.mu.Lock()
	defer n.table.mu.Unlock()
	old := n.engine.Ring()
	if old != nil && (old.Version() == r.Version() || newer(old.Version(), r.Version())) {
		return false
	}
	n.table.prev = prev
	back := n.returning(old, r)
	n.engine.Merge(back)
	n.engine.SetRingAfter(prev, r)
	n.engine.Announce(back)
	n.peers.Retain(r.Members())
	n.runWarm() // a table that includes this node starts the warm
	return true
}

// publish tells the cluster, in gossip, which table this node routes by.
func (n *Node) publish(r *ring.Ring) {
	if err := n.members.SetTableVersion(r.Version(), metaTimeout); err != nil && !n.closing.Load() {
		n.log.Debug("table version not yet spread in gossip", "err", err)
	}
}

// setTableCurrent records whether the node routes by its coordinator's
// table, and updates readiness.
func (n *Node) setTableCurrent(current bool) {
	n.table.mu.Lock()
	changed := n.table.current != current
	n.table.current = current
	n.table.mu.Unlock()
	if changed {
		n.updateReady()
	}
}

// pull fetches from's table and installs it. When coord is not empty, from
// is the coordinator, and the pulled table is current once installed.
func (n *Node) pull(from ring.Member, coord string) {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	resp, err := n.peers.GetTable(ctx, from, &pb.GetTableRequest{})
	if err != nil {
		n.log.Debug("pulling the partition table failed; waiting for a push", "from", from.Name, "err", err)
		return
	}
	prev, r, err := n.tableFrom(resp.Table)
	if err != nil {
		n.log.Warn("pulled partition table refused", "from", from.Name, "err", err)
		return
	}
	n.install(prev, r)
	n.publish(r)
	if coord != "" {
		n.setTableCurrent(n.engine.Ring().Version() == r.Version())
	}
}

// push sends r to m; m ignores it when it routes by a newer one.
func (n *Node) push(m ring.Member, r *ring.Ring) {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	n.table.mu.Lock()
	prev := n.table.prev
	n.table.mu.Unlock()
	if _, err := n.peers.PushTable(ctx, m, &pb.PushTableRequest{Table: tableMessage(prev, r, n.clock.Send())}); err != nil && !n.closing.Load() {
		n.log.Debug("pushing the partition table failed; the member will pull it", "member", m.Name, "err", err)
	}
}

// receive installs a pushed table (Peer.PushTable) and returns the version
// the node routes by afterwards.
func (n *Node) receive(t *pb.Table) (uint64, error) {
	prev, r, err := n.tableFrom(t)
	if err != nil {
		return 0, err
	}
	if n.install(prev, r) {
		n.publish(r)
	}
	cur := n.engine.Ring()
	if coord, ok := coordinator(n.members.Alive()); ok && coord.Name != n.cfg.Name {
		n.setTableCurrent(cur.Version() == r.Version())
	}
	return cur.Version(), nil
}

// errTable marks a table that cannot be routed by.
var errTable = errors.New("bad partition table")

// tableFrom returns the table t carries and the one it was computed from
// (nil when t carries none).
func (n *Node) tableFrom(t *pb.Table) (prev, r *ring.Ring, err error) {
	if t == nil {
		return nil, nil, fmt.Errorf("%w: none sent", errTable)
	}
	if r, err = n.fromWire(t.Members, t.Owners, t.Version); err != nil {
		return nil, nil, err
	}
	if len(t.PreviousOwners) > 0 {
		if prev, err = n.fromWire(t.PreviousMembers, t.PreviousOwners, t.PreviousVersion); err != nil {
			return nil, nil, err
		}
	}
	return prev, r, nil
}

func (n *Node) fromWire(members []*pb.RingNode, owners []uint32, version uint64) (*ring.Ring, error) {
	ms := make([]ring.Member, len(members))
	for i, m := range members {
		ms[i] = ring.Member{Name: m.Name, Addr: m.GrpcAddr}
	}
	r, err := ring.FromOwners(n.cfg.Ring, ms, owners, version)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errTable, err)
	}
	return r, nil
}

// tableMessage is r on the wire, with prev when not nil.
func tableMessage(prev, r *ring.Ring, hlc uint64) *pb.Table {
	t := &pb.Table{Version: r.Version(), PartitionCount: uint32(r.PartitionCount()), Owners: r.Owners(), Hlc: hlc, Members: wireMembers(r)}
	if prev != nil {
		t.PreviousVersion, t.PreviousOwners, t.PreviousMembers = prev.Version(), prev.Owners(), wireMembers(prev)
	}
	return t
}

func wireMembers(r *ring.Ring) []*pb.RingNode {
	out := make([]*pb.RingNode, 0, len(r.Members()))
	for _, m := range r.Members() {
		out = append(out, &pb.RingNode{Name: m.Name, GrpcAddr: m.Addr})
	}
	return out
}

// nodeTables is the node's side of the table RPCs.
type nodeTables struct{ n *Node }

func (t nodeTables) Table() *pb.Table {
	r := t.n.engine.Ring()
	if r == nil {
		return nil
	}
	t.n.table.mu.Lock()
	prev := t.n.table.prev
	t.n.table.mu.Unlock()
	return tableMessage(prev, r, t.n.clock.Send())
}

func (t nodeTables) Receive(tb *pb.Table) (uint64, error) { return t.n.receive(tb) }
