package membership

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// record is what this node keeps about one member.
type record struct {
	Member
	leaving    bool      // the member announced a graceful leave
	departedAt time.Time // when it stopped being alive; zero while alive
	// tableMessages: the member gossips its table version in messages
	// (tables.go); tableSeq orders them.
	tableMessages bool
	tableSeq      uint64
}

// departure queues a member for pruning once Linger has passed.
type departure struct {
	name string
	at   time.Time
}

// Counts is how many listed members are in each state.
type Counts struct {
	Alive, Dead, Left int
}

// Alive returns the alive members sorted by name: the set the ring is built
// from.
func (m *Membership) Alive() []Member {
	return m.snapshot(func(x Member) bool { return x.State == StateAlive })
}

// Members returns every node this node knows of, sorted by name: the alive
// ones and those that died or left within Linger.
func (m *Membership) Members() []Member {
	return m.snapshot(func(Member) bool { return true })
}

// Counts returns how many members are alive, dead and left, as Members
// would list them. It is O(1) (counts are kept as events arrive) and does
// not allocate: metrics call it on every scrape.
func (m *Membership) Counts() Counts {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruneLocked(time.Now())
	return m.counts
}

// setLocked records r and keeps m.counts in step. m.mu must be held.
func (m *Membership) setLocked(r record) {
	if old, ok := m.nodes[r.Name]; ok {
		m.counts.add(old.State, -1)
	}
	m.nodes[r.Name] = r
	m.counts.add(r.State, 1)
	m.generation.Add(1)
}

// exits is when gossip last saw a member leave gracefully and die.
type exits struct{ left, dead time.Time }

// noteExitLocked records when gossip saw name depart in state s (left or
// dead), for Exits; kept across the member's return. m.mu must be held.
func (m *Membership) noteExitLocked(name string, s State, at time.Time) {
	if m.exits == nil || len(m.exits) >= maxDeparted {
		m.exits = map[string]exits{} // forget the oldest lot: a graceful leave missed is a merge, a cache dropped
	}
	e := m.exits[name]
	if s == StateLeft {
		e.left = at
	} else {
		e.dead = at
	}
	m.exits[name] = e
}

// Exits returns when gossip last saw the member leave gracefully (its
// leaving mark) and last saw it dead, zero for never, even if it has come
// back since (Departures).
func (m *Membership) Exits(name string) (left, dead time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.exits[name]
	return e.left, e.dead
}

// State returns what gossip says of the member now; 0 when it knows none.
func (m *Membership) State(name string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nodes[name].State
}

// Generation counts the changes to what Members lists (a join, a death, a
// departure, new metadata, a member forgotten): something derived from
// Members is current while Generation is what it was when Members was read.
// It is one atomic load, for callers that check it on every request.
func (m *Membership) Generation() uint64 { return m.generation.Load() }

// deleteLocked forgets a member. m.mu must be held.
func (m *Membership) deleteLocked(name string) {
	if old, ok := m.nodes[name]; ok {
		m.counts.add(old.State, -1)
		delete(m.nodes, name)
		m.generation.Add(1)
	}
	delete(m.pendingTables, name)
}

func (c *Counts) add(s State, n int) {
	switch s {
	case StateAlive:
		c.Alive += n
	case StateDead:
		c.Dead += n
	case StateLeft:
		c.Left += n
	}
}

func (m *Membership) snapshot(keep func(Member) bool) []Member {
	m.mu.Lock()
	m.pruneLocked(time.Now())
	out := make([]Member, 0, len(m.nodes))
	for _, r := range m.nodes {
		if keep(r.Member) {
			out = append(out, r.Member)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// pruneLocked forgets members that departed at least Linger ago and have not
// come back. Departures are queued in time order, so it looks only at the
// head of the queue: O(1) when nothing has expired. m.mu must be held.
func (m *Membership) pruneLocked(now time.Time) {
	for len(m.departures) > 0 {
		d := m.departures[0]
		if now.Sub(d.at) < m.cfg.Linger {
			return
		}
		m.departures[0] = departure{}
		m.departures = m.departures[1:]
		r, ok := m.nodes[d.name]
		// A member that came back (and maybe left again since) has a newer
		// departure, or none, and stays.
		if ok && d.name != m.cfg.Name && r.State != StateAlive && r.departedAt.Equal(d.at) {
			m.deleteLocked(d.name)
		}
	}
	if len(m.departures) == 0 {
		m.departures = nil // let the backing array go
	}
}

// toMember copies n; it must run under memberlist's lock (in an event hook).
// memberlist does not keep Node.State current, so the state is set by the
// caller.
func toMember(n *memberlist.Node) (Member, meta) {
	var md meta
	_ = json.Unmarshal(n.Meta, &md) // a peer with bad metadata has no gRPC address
	mem := Member{Name: n.Name, GossipAddr: n.Address(), GRPCAddr: md.GRPC, State: StateAlive, TableVersion: md.Table, RESPAddr: md.RESP}
	if md.Since != 0 {
		mem.Since = time.Unix(0, md.Since)
	}
	return mem, md
}

// events receives memberlist callbacks. They run under memberlist's node
// lock, the only time its *Node may be read safely: copy, record, signal.
type events struct{ m *Membership }

func (e events) record(n *memberlist.Node, departed bool) {
	mem, md := toMember(n)
	now := time.Now()
	e.m.mu.Lock()
	old, had := e.m.nodes[n.Name]
	r := record{Member: mem, tableMessages: md.TV > 0}
	var adopted tableEntry
	var adoptedOK bool
	switch {
	case n.Name == e.m.cfg.Name:
		r.TableVersion = e.m.table.Load()
	case r.tableMessages:
		// Metadata does not carry its version (or an old one): keep what
		// its messages said, for this start of it.
		r.TableVersion = 0
		if had && old.Since.Equal(mem.Since) {
			r.TableVersion, r.tableSeq = old.TableVersion, old.tableSeq
		}
		adopted, adoptedOK = e.m.adoptPendingLocked(&r)
	}
	switch {
	case !departed:
		// A node that announced its leave is out of the ring at once, so
		// peers stop routing to it while it drains.
		r.leaving = md.Leaving
		if md.Leaving {
			r.State = StateLeft
		}
	case had && old.leaving:
		r.leaving = true
		r.State = StateLeft
	default:
		r.State = StateDead
	}
	if r.State != StateAlive {
		if had && old.State != StateAlive {
			r.departedAt = old.departedAt // left, then gone: linger from the first
		} else {
			r.departedAt = now
			e.m.departures = append(e.m.departures, departure{name: n.Name, at: now})
		}
	}
	if r.State != StateAlive && !(had && old.State == r.State) {
		e.m.noteExitLocked(n.Name, r.State, now)
	}
	// A member back from dead (a healed partition, a pause) with the same
	// start kept the table version it had before; ours may be news to it,
	// and to those on its side.
	returned := had && old.State != StateAlive && r.State == StateAlive && n.Name != e.m.cfg.Name
	e.m.setLocked(r)
	e.m.pruneLocked(now)
	legacy := e.m.legacyLocked()
	// A node of the previous version reads table versions from metadata
	// only: publish ours there as well, once it appears. Not here: this
	// runs under memberlist's lock.
	republish := e.m.legacy.Swap(legacy) != legacy && legacy && !e.m.stopped
	if republish {
		e.m.wg.Add(1) // Shutdown waits for m.wg; stopped is checked under mu
	}
	e.m.mu.Unlock()
	if republish {
		go func() {
			defer e.m.wg.Done()
			e.m.republish()
		}()
	}
	if returned {
		e.m.queueOwnTable()
	}
	if adoptedOK {
		e.m.queueTable(adopted) // new here: pass it on
	}
	if !departed && n.Name != e.m.cfg.Name {
		// Another node reached us: joined, even if it was its join, not ours.
		e.m.markJoined()
	}
	e.m.signal()
}

func (e events) NotifyJoin(n *memberlist.Node)   { e.record(n, false) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.record(n, false) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.record(n, true) }
