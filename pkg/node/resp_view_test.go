package node

import (
	"testing"

	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/resp"
	"github.com/ringcache/ringcache/pkg/ring"
)

// The Redis Cluster map names each range's real owner while gossip knows
// of it, alive or not: a member that is leaving keeps its address (its
// clients meet a connection error and reload); an owner without a door, or
// never heard of, is shown as this node.
func TestBuildRESPView_NamesEachOwnerByItsLastKnownAddress(t *testing.T) {
	members := []ring.Member{{Name: "a", Addr: "a:1"}, {Name: "b", Addr: "b:1"}, {Name: "c", Addr: "c:1"}, {Name: "d", Addr: "d:1"}}
	r, err := ring.New(ring.DefaultConfig(), members, 7)
	if err != nil {
		t.Fatal(err)
	}
	self := resp.Node{ID: resp.NodeID("a"), Name: "a", Addr: "a:6379"}
	gossip := []membership.Member{
		{Name: "a", RESPAddr: "a:6379", State: membership.StateAlive, TableVersion: 7},
		{Name: "b", RESPAddr: "b:6379", State: membership.StateAlive, TableVersion: 7},
		{Name: "c", RESPAddr: "c:6379", State: membership.StateLeft, TableVersion: 6}, // leaving: still in the table
		{Name: "d", State: membership.StateAlive, TableVersion: 7},                    // no RESP door
	}
	owners := func(v *resp.View) map[string]string { // owner name -> address shown
		got := map[string]string{}
		for _, sr := range v.Ranges {
			got[r.PartitionOwner(r.SlotPartition(sr.Start)).Name] = sr.Owner.Addr
			if want := r.PartitionOwner(r.SlotPartition(sr.Start)).Name; sr.Owner.Name != want && sr.Owner != self {
				t.Errorf("range %d-%d shown as %s's; the table gives it to %s", sr.Start, sr.End, sr.Owner.Name, want)
			}
		}
		return got
	}

	v := buildRESPView(r, self, gossip)
	if v.Version != 7 {
		t.Errorf("view version = %d, want the table's, 7", v.Version)
	}
	want := map[string]string{"a": "a:6379", "b": "b:6379", "c": "c:6379", "d": "a:6379"}
	if got := owners(v); len(got) != len(want) || got["a"] != want["a"] || got["b"] != want["b"] || got["c"] != want["c"] || got["d"] != want["d"] {
		t.Errorf("addresses by owner = %v, want %v (the leaving member keeps its own; the one without a door is served here)", got, want)
	}

	// c has not published table 7: MOVED would send clients to a node
	// that refuses them, so its ranges are marked settling (forwarded);
	// b routes by table 7 and is not.
	for _, sr := range v.Ranges {
		if want := sr.Owner.Name == "c"; sr.Owner.Settling != want {
			t.Errorf("range %d-%d of %s: settling %v, want %v", sr.Start, sr.End, sr.Owner.Name, sr.Owner.Settling, want)
		}
	}

	// b not heard of yet: its ranges are served here for now (the view is
	// rebuilt when gossip brings b: the membership's generation moves).
	v = buildRESPView(r, self, []membership.Member{gossip[0], gossip[2], gossip[3]})
	if got := owners(v)["b"]; got != self.Addr {
		t.Errorf("an unknown owner's ranges are shown at %q, want this node's %q", got, self.Addr)
	}
}
