package ctl

import (
	"testing"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func membersNode() *fakeNode {
	f := newFakeNode("n1")
	f.members = []*ringcachev1.Member{
		{Name: "n2", GrpcAddr: "127.0.0.1:7102", GossipAddr: "127.0.0.1:7202", State: ringcachev1.MemberState_MEMBER_STATE_SUSPECT},
		{Name: "n1", GrpcAddr: "127.0.0.1:7101", GossipAddr: "127.0.0.1:7201", State: ringcachev1.MemberState_MEMBER_STATE_ALIVE},
		{Name: "n3", GrpcAddr: "127.0.0.1:7103", GossipAddr: "127.0.0.1:7203", State: ringcachev1.MemberState_MEMBER_STATE_LEFT},
	}
	return f
}

func TestMembers_TableSortedWithSelfMarked(t *testing.T) {
	addr := startNode(t, membersNode())
	out := mustRun(t, "--addr", addr, "members")
	assertRows(t, out, [][]string{
		{"NAME", "GRPC ADDR", "GOSSIP ADDR", "STATE"},
		{"n1 (self)", "127.0.0.1:7101", "127.0.0.1:7201", "alive"},
		{"n2", "127.0.0.1:7102", "127.0.0.1:7202", "suspect"},
		{"n3", "127.0.0.1:7103", "127.0.0.1:7203", "left"},
	})
}

func TestMembers_JSON(t *testing.T) {
	addr := startNode(t, membersNode())
	out := mustRun(t, "--addr", addr, "members", "-o", "json")
	assertJSON(t, out, `{"self":"n1","members":[
		{"name":"n1","grpc_addr":"127.0.0.1:7101","gossip_addr":"127.0.0.1:7201","state":"alive"},
		{"name":"n2","grpc_addr":"127.0.0.1:7102","gossip_addr":"127.0.0.1:7202","state":"suspect"},
		{"name":"n3","grpc_addr":"127.0.0.1:7103","gossip_addr":"127.0.0.1:7203","state":"left"}]}`)
}

func ringNode() *fakeNode {
	f := newFakeNode("n1")
	f.ring = &ringcachev1.RingResponse{
		Version:         7,
		PartitionCount:  4,
		PartitionOwners: []string{"n1", "n2", "n2", "n1"},
		LoadFactor:      1.25,
		Members: []*ringcachev1.RingMember{
			{Name: "n2", GrpcAddr: "127.0.0.1:7102", Partitions: 3},
			{Name: "n1", GrpcAddr: "127.0.0.1:7101", Partitions: 1},
		},
	}
	return f
}

func TestRing_TableSortedByName(t *testing.T) {
	addr := startNode(t, ringNode())
	out := mustRun(t, "--addr", addr, "ring")
	assertRows(t, out, [][]string{
		{"version 7, 4 partitions, load factor 1.25"},
		{""},
		{"NAME", "ADDR", "PARTITIONS", "SHARE%"},
		{"n1", "127.0.0.1:7101", "1", "25.0"},
		{"n2", "127.0.0.1:7102", "3", "75.0"},
	})
}

func TestRing_PartitionsFlagPrintsOwners(t *testing.T) {
	addr := startNode(t, ringNode())
	out := mustRun(t, "--addr", addr, "ring", "--partitions")
	assertRows(t, out, [][]string{
		{"version 7, 4 partitions, load factor 1.25"},
		{""},
		{"NAME", "ADDR", "PARTITIONS", "SHARE%"},
		{"n1", "127.0.0.1:7101", "1", "25.0"},
		{"n2", "127.0.0.1:7102", "3", "75.0"},
		{""},
		{"PARTITION", "OWNER"},
		{"0", "n1"}, {"1", "n2"}, {"2", "n2"}, {"3", "n1"},
	})
}

func TestRing_JSON(t *testing.T) {
	addr := startNode(t, ringNode())
	out := mustRun(t, "--addr", addr, "ring", "-o", "json")
	assertJSON(t, out, `{"version":7,"partition_count":4,"load_factor":1.25,
		"members":[
			{"name":"n1","grpc_addr":"127.0.0.1:7101","partitions":1,"share_percent":25},
			{"name":"n2","grpc_addr":"127.0.0.1:7102","partitions":3,"share_percent":75}],
		"partition_owners":["n1","n2","n2","n1"]}`)
}

func TestLocate_TableAndJSON(t *testing.T) {
	addr := startNode(t, newFakeNode("n1"))
	assertRows(t, mustRun(t, "--addr", addr, "locate", "users", "42"), [][]string{
		{"PARTITION", "OWNER", "OWNER ADDR"},
		{"42", "n2", "127.0.0.1:7102"},
	})
	assertJSON(t, mustRun(t, "--addr", addr, "-o", "json", "locate", "users", "42"),
		`{"namespace":"users","key":"42","partition":42,"owner":"n2","owner_grpc_addr":"127.0.0.1:7102"}`)
}
