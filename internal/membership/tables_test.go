package membership

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func versionOf(m *Membership, name string) (uint64, bool) {
	for _, x := range m.Alive() {
		if x.Name == name {
			return x.TableVersion, true
		}
	}
	return 0, false
}

// A table version reaches the peers in a message of its own: the node's
// metadata, hence its memberlist incarnation, stays as it was. (Each
// re-advertisement bumped the incarnation, and a peer that missed a bump
// had its suspicions of the node ignored: docs/reliability.md.)
func TestTables_AVersionSpreadsWithoutTouchingMetadata(t *testing.T) {
	seed := parted(t, "seed", 4096, "")
	m := parted(t, "m", 4096, seed.LocalAddr())
	waitFor(t, "m to join", func() bool { return len(seed.Alive()) == 2 && len(m.Alive()) == 2 })
	before := string(m.list.LocalNode().Meta)
	for v := uint64(1); v <= 5; v++ {
		if err := m.SetTableVersion(v*10, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the last version to reach the seed", func() bool { v, _ := versionOf(seed, "m"); return v == 50 })
	if after := string(m.list.LocalNode().Meta); after != before {
		t.Fatalf("publishing table versions changed the node's metadata: %s, then %s", before, after)
	}
	if v, _ := versionOf(m, "m"); v != 50 {
		t.Fatalf("m lists itself at table %d, want 50", v)
	}
	// Publishing is a change to what Members lists, as a metadata update
	// was: the table loop reconciles on it (a node that installed a table
	// its coordinator does not route by then pulls the coordinator's).
	for len(m.Changed()) > 0 {
		<-m.Changed()
	}
	if err := m.SetTableVersion(60, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.Changed():
	default:
		t.Fatal("publishing a table version did not signal Changed")
	}
}

// oldNode is a memberlist node that publishes metadata as the version
// before table messages did: the table version in it, no "tv" mark.
type oldNode struct {
	mu   sync.Mutex
	meta []byte
}

func (o *oldNode) NodeMeta(int) []byte { o.mu.Lock(); defer o.mu.Unlock(); return o.meta }

// seen records the seed's table version as the old node reads it: from
// metadata, in memberlist's event hooks (the only time its *Node may be
// read safely).
type seen struct {
	mu    sync.Mutex
	table uint64
}

func (s *seen) note(n *memberlist.Node) {
	if n.Name != "seed" {
		return
	}
	var md meta
	_ = json.Unmarshal(n.Meta, &md)
	s.mu.Lock()
	s.table = md.Table
	s.mu.Unlock()
}
func (s *seen) NotifyJoin(n *memberlist.Node)      { s.note(n) }
func (s *seen) NotifyUpdate(n *memberlist.Node)    { s.note(n) }
func (s *seen) NotifyLeave(*memberlist.Node)       {}
func (o *oldNode) NotifyMsg([]byte)                {}
func (o *oldNode) GetBroadcasts(int, int) [][]byte { return nil }
func (o *oldNode) LocalState(bool) []byte          { return nil }
func (o *oldNode) MergeRemoteState([]byte, bool)   {}

// While a node of the previous version is alive, nodes publish their table
// version in metadata too, since that is where it reads it (and takes a
// coordinator without one for not current); its own version is read from
// its metadata.
func TestTables_ANodeOfThePreviousVersionReadsAndIsRead(t *testing.T) {
	seed := parted(t, "seed", 4096, "")
	if err := seed.SetTableVersion(7, time.Second); err != nil {
		t.Fatal(err)
	}
	o := &oldNode{meta: []byte(fmt.Sprintf(`{"grpc":"127.0.0.1:1","since":%d,"parts":4096,"table":5}`, time.Now().UnixNano()))}
	c := memberlist.DefaultLocalConfig()
	c.Name, c.BindAddr, c.BindPort = "old", "127.0.0.1", 0
	c.Delegate = o
	sn := &seen{}
	c.Events = sn
	c.Logger = log.New(io.Discard, "", 0)
	fast(c)
	old, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Shutdown() })
	if _, err := old.Join([]string{seed.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the seed to read the old node's version from its metadata", func() bool { v, _ := versionOf(seed, "old"); return v == 5 })
	seedTable := func() uint64 { sn.mu.Lock(); defer sn.mu.Unlock(); return sn.table }
	waitFor(t, "the old node to read the seed's version from its metadata", func() bool { return seedTable() == 7 })
	if err := seed.SetTableVersion(8, time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old node to read the seed's next version", func() bool { return seedTable() == 8 })
}

// The entries of one start of a node are ordered by their sequence: a late
// one never sets a version back. One for a start not seen yet waits for it;
// one for an earlier start is dropped.
func TestTables_EntriesApplyInOrderAndPerStart(t *testing.T) {
	m := bare(time.Hour)
	start1, start2 := time.Unix(100, 0), time.Unix(200, 0)
	m.setLocked(record{Member: Member{Name: "p", State: StateAlive, Since: start1}, tableMessages: true})
	entry := func(since time.Time, seq, v uint64) tableEntry {
		return tableEntry{Type: tableMsg, Name: "p", Since: since.UnixNano(), Seq: seq, Version: v}
	}
	version := func() uint64 { return m.nodes["p"].TableVersion }

	if !m.noteTable(entry(start1, 2, 20)) || version() != 20 {
		t.Fatalf("first entry not applied: %d", version())
	}
	if m.noteTable(entry(start1, 1, 10)) || version() != 20 {
		t.Fatalf("a late entry set the version back to %d", version())
	}
	if m.noteTable(tableEntry{Type: tableMsg, Name: "self", Since: 1, Seq: 9, Version: 99}) {
		t.Fatal("an entry about this node itself was applied")
	}
	// p restarted: its entry arrives before its new metadata.
	if m.noteTable(entry(start2, 1, 30)) || version() != 20 {
		t.Fatalf("an entry of a start not seen yet was applied: %d", version())
	}
	r := record{Member: Member{Name: "p", State: StateAlive, Since: start2}, tableMessages: true}
	if _, ok := m.adoptPendingLocked(&r); !ok || r.TableVersion != 30 {
		t.Fatalf("the kept entry was not applied once the start was seen: %d", r.TableVersion)
	}
	m.setLocked(r)
	if m.noteTable(entry(start1, 5, 50)) || version() != 30 {
		t.Fatalf("an entry of the earlier start was applied: %d", version())
	}

	// A push/pull sync carries what a peer knows.
	state, _ := json.Marshal([]tableEntry{entry(start2, 4, 40), {Type: "another", Name: "p"}})
	m.mergeTables(state)
	if version() != 40 {
		t.Fatalf("a synced entry was not applied: %d", version())
	}
	if n := m.tables.NumQueued(); n != 1 {
		t.Fatalf("%d messages queued after a sync brought news; want it passed on", n)
	}
}
