// Package table keeps a cluster's nodes routing by one partition table.
//
// One member, the coordinator — the oldest alive member (earliest start,
// then lowest name), which every member can name from gossip alone —
// computes each table from the previous one with ring.Rebalance (few
// moves, exact shares) when the members change, stamps it with a higher
// version, and pushes it to every member (Peer.PushTable); members also
// pull it (Peer.GetTable) when gossip shows the coordinator, or anyone,
// routing by another version. So every node routes by the same table, and
// a join or leave moves only the partitions it must
// (docs/architecture.md).
//
// When the coordinator dies, the next oldest takes over: it first adopts
// the newest table any member routes by, then computes from it, so no
// table is lost with its author and versions only grow. Two coordinators
// on the two sides of a partition compute different tables; their
// versions differ in their low bits (the author's tag), and after the heal
// the one coordinator computes a table with a higher counter than both.
//
// A node that is not the coordinator is current — and may report ready —
// only once it routes by the coordinator's current table.
package table

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

const (
	// tagBits of a version tell its author apart; the rest count.
	tagBits = ring.VersionTagBits
	// tableTimeout bounds one push or pull of a table.
	tableTimeout = 3 * time.Second
	// metaTimeout bounds the spread of a new table version in gossip.
	metaTimeout = time.Second
	// followTimeout bounds the pull of a table a peer forwarded ops under:
	// the ops wait for it (Follow).
	followTimeout = time.Second
)

// Members is the gossip view of the cluster.
type Members interface {
	Alive() []membership.Member
	// SetTableVersion tells the cluster which table this node routes by.
	SetTableVersion(v uint64, timeout time.Duration) error
}

// Peers carries the table protocol to other members.
type Peers interface {
	GetTable(ctx context.Context, to ring.Member, req *pb.GetTableRequest) (*pb.GetTableResponse, error)
	PushTable(ctx context.Context, to ring.Member, req *pb.PushTableRequest) (*pb.PushTableResponse, error)
}

// Config configures a Coordinator; every field but Logger is required.
type Config struct {
	// Self is this node's name; Ring the shape of every table.
	Self string
	Ring ring.Config
	// HasSeeds tells a node that joins others: alone before it has
	// joined, it waits for their table rather than compute its own.
	HasSeeds bool
	Members  Members
	Peers    Peers
	// Routing returns the table the node routes by (nil: none yet).
	Routing func() *ring.Ring
	// Install makes r, computed from prev (nil: none), the table the node
	// routes by; old is the one it routed by. leftOut reports that the
	// cluster routed by a table without this node since it routed by old
	// (LeftOut).
	Install func(old, prev, r *ring.Ring, leftOut bool)
	// Clock returns the node's hybrid logical clock for a message.
	Clock func() uint64
	// CurrentChanged is called when Current changes.
	CurrentChanged func()
	// Joined reports whether the node has joined its cluster, Closing
	// whether it is closing (failures are then not logged).
	Joined, Closing func() bool
	// Go runs a push in the node's lifetime (its WaitGroup).
	Go     func(func())
	Logger *slog.Logger
}

// Coordinator runs the table protocol of one node.
type Coordinator struct {
	cfg     Config
	mu      sync.Mutex        // serializes installs (reconciles, pushes, pulls)
	current bool              // the node routes by its coordinator's table
	prev    *ring.Ring        // the table the current one was computed from; nil when none
	since   map[string]uint64 // the current one's table.since
	work    sync.Mutex        // one Reconcile at a time

	follow    sync.Mutex    // guards followed and following
	followed  uint64        // the newest version Follow pulled for
	following chan struct{} // closed when that pull ends
	// followMissed names a member asked for a version Follow pulled for,
	// which answered with an older table: another member forwarding by
	// that version is asked again.
	followMissed atomic.Pointer[followMiss]
}

// New returns a Coordinator for cfg.
func New(cfg Config) *Coordinator {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{cfg: cfg}
}

// Current reports whether the node routes by its coordinator's table.
func (c *Coordinator) Current() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

// nextVersion returns the version after v, authored by name.
func nextVersion(v uint64, name string) uint64 {
	return (v>>tagBits+1)<<tagBits | (xxhash.Sum64String(name)&(1<<tagBits-1) | 1)
}

// newer reports whether version a's counter is above b's.
func newer(a, b uint64) bool { return ring.NewerVersion(a, b) }

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

// Reconcile is the step after a membership change: the coordinator
// computes and pushes a table, any other member pulls its coordinator's
// when it routes by another.
func (c *Coordinator) Reconcile() {
	c.work.Lock()
	defer c.work.Unlock()
	alive := c.cfg.Members.Alive()
	coord, ok := coordinator(alive)
	if !ok {
		return
	}
	if coord.Name == c.cfg.Self {
		if len(alive) == 1 && c.cfg.HasSeeds && !c.cfg.Joined() {
			return // a node with seeds gets its table from their coordinator
		}
		c.coordinate(alive)
		return
	}
	cur := c.cfg.Routing()
	if cur != nil && cur.Version() == coord.TableVersion {
		c.setCurrent(true)
		return
	}
	c.setCurrent(false)
	if coord.TableVersion != 0 {
		c.pull(member(coord), coord.Name)
	}
}

// coordinate computes, installs and pushes a table for the alive members,
// as the coordinator.
func (c *Coordinator) coordinate(alive []membership.Member) {
	base := c.routed()
	cur := base.r
	// Compute from the newest table anyone routes by: a coordinator that
	// took over may lag the one that died, and after a partition heals the
	// other side's table may have the higher version. It is fetched, not
	// installed: it may lack this node or members alive here.
	if holder, v := newestHolder(alive); holder.Name != "" && holder.Name != c.cfg.Self && (cur == nil || newer(v, cur.Version())) {
		if t, ok := c.fetch(member(holder), tableTimeout); ok && (cur == nil || newer(t.r.Version(), cur.Version())) {
			base = t
		}
	}
	var ms []ring.Member
	for _, m := range alive {
		if m.GRPCAddr != "" && !m.Since.IsZero() {
			ms = append(ms, member(m))
		}
	}
	if base.r != nil && sameMembers(base.r.Members(), ms) {
		if base.r != cur && !c.install(base) {
			return
		}
		c.setCurrent(true)
		c.publish(base.r)
		return
	}
	var next *ring.Ring
	var err error
	if base.r == nil {
		next, err = ring.New(c.cfg.Ring, ms, nextVersion(0, c.cfg.Self))
	} else {
		next, err = ring.Rebalance(base.r, ms, nextVersion(base.r.Version(), c.cfg.Self))
	}
	if err != nil {
		if !c.cfg.Closing() {
			c.cfg.Logger.Error("cannot compute the partition table; keeping the previous one", "members", len(ms), "err", err)
		}
		return
	}
	t := table{r: next, prev: base.r, since: base.after(next)}
	if !c.install(t) {
		return
	}
	c.setCurrent(true)
	c.publish(next)
	for _, m := range next.Members() {
		if m.Name != c.cfg.Self {
			c.cfg.Go(func() { c.push(m, t) })
		}
	}
}

// routed returns the table the node routes by (r nil: none yet), with
// what it was installed with: installs set both under c.mu.
func (c *Coordinator) routed() table {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.cfg.Routing()
	if r == nil {
		return table{}
	}
	return table{r: r, prev: c.prev, since: c.since}
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
// it did. A table without this node is refused unless the node is closing:
// its coordinator has not counted this node yet (it joins, or it is back
// from a partition or a pause, and a table with it follows), and routing by
// it would send every key away and take the members alive here that it
// lacks for departed, their write-behind copies for orphans to take over.
func (c *Coordinator) install(t table) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, old := t.r, c.cfg.Routing()
	if old != nil && (old.Version() == r.Version() || newer(old.Version(), r.Version())) {
		return false
	}
	if !r.Has(c.cfg.Self) && !c.cfg.Closing() {
		c.cfg.Logger.Debug("partition table without this node not installed; waiting for one with it", "version", r.Version(), "members", len(r.Members()))
		return false
	}
	c.prev, c.since = t.prev, t.since
	c.cfg.Install(old, t.prev, r, LeftOut(c.cfg.Self, old, t.prev, r, t.since))
	return true
}

// adopt installs t, when it may, and tells the cluster.
func (c *Coordinator) adopt(t table) {
	if c.install(t) {
		c.publish(t.r)
	}
}

// followMiss is a pull for Follow that got a table older than version.
type followMiss struct {
	version uint64
	from    string
}

// member is m as a table names it: by its gRPC address.
func member(m membership.Member) ring.Member { return ring.Member{Name: m.Name, Addr: m.GRPCAddr} }

// publish tells the cluster, in gossip, which table this node routes by.
func (c *Coordinator) publish(r *ring.Ring) {
	if err := c.cfg.Members.SetTableVersion(r.Version(), metaTimeout); err != nil && !c.cfg.Closing() {
		c.cfg.Logger.Debug("table version not yet spread in gossip", "err", err)
	}
}

// setCurrent records whether the node routes by its coordinator's table.
func (c *Coordinator) setCurrent(current bool) {
	c.mu.Lock()
	changed := c.current != current
	c.current = current
	c.mu.Unlock()
	if changed {
		c.cfg.CurrentChanged()
	}
}

// pull fetches from's table and installs it. When coord is not empty, from
// is the coordinator, and the node is current once it routes by the table.
func (c *Coordinator) pull(from ring.Member, coord string) {
	t, ok := c.fetch(from, tableTimeout)
	if !ok {
		return
	}
	c.adopt(t)
	if coord != "" {
		c.setCurrent(c.routes(t.r.Version()))
	}
}

// fetch returns from's table.
func (c *Coordinator) fetch(from ring.Member, timeout time.Duration) (t table, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := c.cfg.Peers.GetTable(ctx, from, &pb.GetTableRequest{})
	if err != nil {
		c.cfg.Logger.Debug("pulling the partition table failed; waiting for a push", "from", from.Name, "err", err)
		return table{}, false
	}
	t, err = c.fromMessage(resp.Table)
	if err != nil {
		c.cfg.Logger.Warn("pulled partition table refused", "from", from.Name, "err", err)
		return table{}, false
	}
	return t, true
}

// routes reports whether the node routes by the table of version v.
func (c *Coordinator) routes(v uint64) bool {
	cur := c.cfg.Routing()
	return cur != nil && cur.Version() == v
}

// push sends t to m; m ignores it when it routes by a newer one. t
// carries the table it was computed from, not c.prev when the push goes:
// a later table may have replaced that meanwhile.
func (c *Coordinator) push(m ring.Member, t table) {
	ctx, cancel := context.WithTimeout(context.Background(), tableTimeout)
	defer cancel()
	if _, err := c.cfg.Peers.PushTable(ctx, m, &pb.PushTableRequest{Table: message(t, c.cfg.Clock())}); err != nil && !c.cfg.Closing() {
		c.cfg.Logger.Debug("pushing the partition table failed; the member will pull it", "member", m.Name, "err", err)
	}
}

// Receive installs a pushed table (Peer.PushTable) and returns the version
// the node routes by afterwards.
func (c *Coordinator) Receive(t *pb.Table) (uint64, error) {
	got, err := c.fromMessage(t)
	if err != nil {
		return 0, err
	}
	c.adopt(got)
	if coord, ok := coordinator(c.cfg.Members.Alive()); ok && coord.Name != c.cfg.Self {
		c.setCurrent(c.routes(got.r.Version()))
	}
	var v uint64
	if cur := c.cfg.Routing(); cur != nil {
		v = cur.Version()
	}
	return v, nil
}

// Table returns the table the node routes by, with the one it was computed
// from (Peer.GetTable); nil when it routes by none yet.
func (c *Coordinator) Table() *pb.Table {
	t := c.routed()
	if t.r == nil {
		return nil
	}
	return message(t, c.cfg.Clock())
}
