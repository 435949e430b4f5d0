package membership

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Table versions travel in gossip messages of their own, not in node
// metadata. Re-advertising metadata bumps a node's memberlist incarnation,
// and every node installs a table after every membership change; a member
// that missed one of those bumps holds an older incarnation of that node,
// and memberlist drops a suspicion or a death notice that carries an older
// incarnation than the receiver's. In a small cluster that left a dead
// node's only other survivor without the confirmation it needs, suspecting
// for SuspicionMaxTimeoutMult times as long (18 s instead of 3 s with the
// local preset; docs/reliability.md). A table message changes nothing in
// memberlist's view of the node.
//
// Each message names the node, its start (Since: a restarted node starts
// over) and a sequence number, which orders the messages of one run, so a
// late one never sets a version back. A node re-broadcasts each message
// that is new to it (an epidemic, as memberlist spreads its own), and
// push/pull syncs carry every version a node knows, which heals a message
// lost on the way.
//
// Nodes of the version before this one read table versions from metadata
// only ("table"), and take a coordinator without one for not yet current.
// So while any member lacks the "tv" mark, a node publishes its version in
// its metadata too, as before.

// tableEntry is one node's table version.
type tableEntry struct {
	Type    string `json:"t"`           // "table"; other types are ignored
	Name    string `json:"n"`           // the node
	Since   int64  `json:"s"`           // its start, Unix nanoseconds
	Seq     uint64 `json:"q"`           // orders the entries of one start
	Version uint64 `json:"v,omitempty"` // the table it routes by
}

const tableMsg = "table"

// tableBroadcast is one queued table message; a newer one for the same
// node replaces it.
type tableBroadcast struct {
	name string
	msg  []byte
	once sync.Once
	done chan struct{} // closed when sent its share of times, or replaced
}

func (b *tableBroadcast) Invalidates(o memberlist.Broadcast) bool {
	ob, ok := o.(*tableBroadcast)
	return ok && ob.name == b.name
}
func (b *tableBroadcast) Name() string    { return "table/" + b.name }
func (b *tableBroadcast) Message() []byte { return b.msg }
func (b *tableBroadcast) Finished()       { b.once.Do(func() { close(b.done) }) }

// queueTable queues e for gossip and returns its broadcast.
func (m *Membership) queueTable(e tableEntry) *tableBroadcast {
	msg, _ := json.Marshal(e)
	b := &tableBroadcast{name: e.Name, msg: msg, done: make(chan struct{})}
	m.tables.QueueBroadcast(b)
	return b
}

// errNotSpread: the version was queued but not yet sent its share of times.
var errNotSpread = errors.New("membership: table version queued, not yet gossiped")

// SetTableVersion publishes the version of the partition table this node
// routes by, waiting at most timeout for the message to go out. Peers see
// it in Member.TableVersion.
func (m *Membership) SetTableVersion(v uint64, timeout time.Duration) error {
	m.tableMu.Lock()
	if m.table.Load() == v {
		m.tableMu.Unlock()
		return nil
	}
	m.table.Store(v)
	m.tableSeq++
	b := m.queueTable(m.ownEntryLocked())
	// The self record changes under tableMu too, so two calls that overlap
	// leave it at the version published last.
	m.mu.Lock()
	if r, ok := m.nodes[m.cfg.Name]; ok {
		r.TableVersion = v
		m.setLocked(r)
	}
	alone := m.counts.Alive <= 1
	m.mu.Unlock()
	m.tableMu.Unlock()
	// A change to what Members lists, as a metadata update was: the table
	// loop reconciles again (a node that installed a table its coordinator
	// does not route by pulls the coordinator's).
	m.signal()
	if m.legacy.Load() {
		return m.updateNode(timeout) // for peers that read it from metadata
	}
	if alone {
		return nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.done:
		return nil
	case <-t.C:
		return errNotSpread
	}
}

// ownEntryLocked is this node's current table entry. m.tableMu must be
// held.
func (m *Membership) ownEntryLocked() tableEntry {
	return tableEntry{Type: tableMsg, Name: m.cfg.Name, Since: m.since.UnixNano(), Seq: m.tableSeq, Version: m.table.Load()}
}

// queueOwnTable gossips this node's current table version again (same
// sequence: a peer that has it ignores it).
func (m *Membership) queueOwnTable() {
	m.tableMu.Lock()
	defer m.tableMu.Unlock()
	if m.tableSeq > 0 {
		m.queueTable(m.ownEntryLocked())
	}
}

// noteTable applies e if it is newer than what this node knows of e.Name
// and reports whether it did. An entry for a start this node has not seen
// yet (the message outran the member's alive notice) is kept until it has.
func (m *Membership) noteTable(e tableEntry) bool {
	if e.Type != tableMsg || e.Name == "" || e.Name == m.cfg.Name {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.nodes[e.Name]
	if !ok || r.Since.UnixNano() < e.Since {
		if p, had := m.pendingTables[e.Name]; !had || p.Since < e.Since || p.Since == e.Since && p.Seq < e.Seq {
			if m.pendingTables == nil {
				m.pendingTables = map[string]tableEntry{}
			}
			if had || len(m.pendingTables) < maxDeparted {
				m.pendingTables[e.Name] = e
			}
		}
		return false
	}
	if r.Since.UnixNano() != e.Since || e.Seq <= r.tableSeq {
		return false
	}
	r.TableVersion, r.tableSeq = e.Version, e.Seq
	m.setLocked(r)
	return true
}

// adoptPendingLocked applies a kept entry to r, a member just recorded,
// when it is for r's start, and returns it when it did (to be passed on).
// m.mu must be held.
func (m *Membership) adoptPendingLocked(r *record) (tableEntry, bool) {
	p, ok := m.pendingTables[r.Name]
	if !ok || p.Since < r.Since.UnixNano() {
		delete(m.pendingTables, r.Name) // an older start's
		return tableEntry{}, false
	}
	if p.Since != r.Since.UnixNano() {
		return tableEntry{}, false // a later start's: keep it
	}
	delete(m.pendingTables, r.Name)
	if p.Seq <= r.tableSeq {
		return tableEntry{}, false
	}
	r.TableVersion, r.tableSeq = p.Version, p.Seq
	return p, true
}

// knownTables is every table version this node knows, its own included,
// for a push/pull sync.
func (m *Membership) knownTables() []byte {
	m.tableMu.Lock()
	out := []tableEntry{m.ownEntryLocked()}
	m.tableMu.Unlock()
	m.mu.Lock()
	for _, r := range m.nodes {
		if r.Name != m.cfg.Name && r.tableSeq > 0 && r.State == StateAlive {
			out = append(out, tableEntry{Type: tableMsg, Name: r.Name, Since: r.Since.UnixNano(), Seq: r.tableSeq, Version: r.TableVersion})
		}
	}
	m.mu.Unlock()
	b, _ := json.Marshal(out)
	return b
}

// mergeTables applies the entries of a peer's push/pull state.
func (m *Membership) mergeTables(buf []byte) {
	var es []tableEntry
	if json.Unmarshal(buf, &es) == nil {
		m.applyTables(es...)
	}
}

// receiveTable applies a gossiped table message.
func (m *Membership) receiveTable(msg []byte) {
	var e tableEntry
	if json.Unmarshal(msg, &e) == nil {
		m.applyTables(e)
	}
}

// applyTables applies es; each that is new here is passed on, and the
// table loop told.
func (m *Membership) applyTables(es ...tableEntry) {
	changed := false
	for _, e := range es {
		if m.noteTable(e) {
			m.queueTable(e)
			changed = true
		}
	}
	if changed {
		m.signal()
	}
}

// legacyLocked reports whether an alive member reads table versions from
// metadata only (a node of the version before table messages). m.mu must
// be held.
func (m *Membership) legacyLocked() bool {
	for _, r := range m.nodes {
		if r.Name != m.cfg.Name && r.State == StateAlive && r.GRPCAddr != "" && !r.tableMessages {
			return true
		}
	}
	return false
}
