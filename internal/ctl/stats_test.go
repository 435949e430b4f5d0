package ctl

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// twoNodes starts n1 (the seed) and n2, both alive, plus n3 reported dead at
// an address nothing listens on; it returns the seed address.
func twoNodes(t *testing.T, n3State ringcachev1.MemberState) (seed string, n1, n2 *fakeNode) {
	t.Helper()
	return twoNodesWith(t, n3State, nil)
}

// twoNodesWith is twoNodes with configure, when not nil, run on n1 and n2
// before they serve.
func twoNodesWith(t *testing.T, n3State ringcachev1.MemberState, configure func(n1, n2 *fakeNode)) (seed string, n1, n2 *fakeNode) {
	t.Helper()
	lis1, lis2 := listen(t), listen(t)
	n1, n2 = newFakeNode("n1"), newFakeNode("n2")
	members := []*ringcachev1.Member{
		{Name: "n2", GrpcAddr: lis2.Addr().String(), State: ringcachev1.MemberState_MEMBER_STATE_ALIVE},
		{Name: "n1", GrpcAddr: lis1.Addr().String(), State: ringcachev1.MemberState_MEMBER_STATE_ALIVE},
		{Name: "n3", GrpcAddr: deadAddr(t), State: n3State},
	}
	n1.members, n2.members = members, members
	n1.stats = &ringcachev1.StatsResponse{
		Node:  "n1",
		Store: &ringcachev1.StoreStats{Entries: 10, Bytes: 500, MaxBytes: 1000, Evictions: 3},
		Namespaces: []*ringcachev1.NamespaceStats{{
			Name: "users", Gets: 8, Hits: 6, Misses: 2, Loads: 2, LoadsDeduplicated: 1,
			LoadErrors: 0, NegativeHits: 1, Sets: 4, Deletes: 1,
		}},
		Forwards: 5, ForwardErrors: 1, ForwardedIn: 2, ClockRejections: 4,
		RssBytes: 60 << 20, MemoryLimitBytes: 96 << 20,
	}
	n2.stats = &ringcachev1.StatsResponse{Node: "n2", Store: &ringcachev1.StoreStats{Entries: 1, Bytes: 7}}
	if configure != nil {
		configure(n1, n2)
	}
	serve(t, lis1, n1)
	serve(t, lis2, n2)
	return lis1.Addr().String(), n1, n2
}

const twoNodesStatsJSON = `[
	{"node":"n1","store":{"entries":10,"bytes":500,"max_bytes":1000,"evictions":3},
	 "namespaces":[{"name":"users","gets":8,"hits":6,"misses":2,"loads":2,"loads_deduplicated":1,
	   "load_errors":0,"negative_hits":1,"sets":4,"deletes":1,
	   "write_errors":0,"backpressure":0,"refreshes":0,"pending_hits":0}],
	 "forwards":5,"forward_errors":1,"forwarded_in":2,"clock_rejections":4,"rss_bytes":62914560,"memory_limit_bytes":100663296},
	{"node":"n2","store":{"entries":1,"bytes":7,"max_bytes":0,"evictions":0},"namespaces":[],
	 "forwards":0,"forward_errors":0,"forwarded_in":0,"clock_rejections":0,"rss_bytes":0,"memory_limit_bytes":0}]`

func TestStats_AsksEveryAliveMember(t *testing.T) {
	seed, n1, n2 := twoNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD)
	out := mustRun(t, "--addr", seed, "stats")
	assertRows(t, out, [][]string{
		{"# store and memory"},
		{"NODE", "ENTRIES", "BYTES", "MAX BYTES", "USE%", "EVICTIONS", "RSS", "GO LIMIT"},
		{"n1", "10", "500", "1000", "50.0", "3", "62914560", "100663296"},
		{"n2", "1", "7", "0", "-", "0", "-", "-"},
		{""},
		{"# namespaces"},
		{"NODE", "NAMESPACE", "GETS", "HITS", "MISSES", "HIT%", "LOADS", "DEDUPED", "LOAD ERRS", "NEG HITS", "SETS", "DELS"},
		{"n1", "users", "8", "6", "2", "75.0", "2", "1", "0", "1", "4", "1"},
		{""},
		{"# forwards"},
		{"NODE", "FORWARDS", "FORWARD ERRS", "FORWARDED IN", "CLOCK REJECTIONS"},
		{"n1", "5", "1", "2", "4"},
		{"n2", "0", "0", "0", "0"},
	})
	if n1.calls() != 1 || n2.calls() != 1 {
		t.Errorf("stats calls n1=%d n2=%d, want 1 each", n1.calls(), n2.calls())
	}
}

func TestStats_JSONListsEveryNode(t *testing.T) {
	seed, _, _ := twoNodes(t, ringcachev1.MemberState_MEMBER_STATE_LEFT)
	out := mustRun(t, "--addr", seed, "-o", "json", "stats")
	assertJSON(t, out, twoNodesStatsJSON)
}

func TestStats_NodeOnlyAsksOnlyAddr(t *testing.T) {
	seed, n1, n2 := twoNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD)
	out := mustRun(t, "--addr", seed, "stats", "--node-only")
	if got := rows(out); len(got) < 4 || !reflect.DeepEqual(got[2], []string{"n1", "10", "500", "1000", "50.0", "3", "62914560", "100663296"}) || got[3][0] != "" {
		t.Errorf("store section must hold only n1:\n%s", out)
	}
	if strings.Contains(out, "n2") {
		t.Errorf("n2 must not be asked with --node-only:\n%s", out)
	}
	if n1.calls() != 1 || n2.calls() != 0 {
		t.Errorf("stats calls n1=%d n2=%d, want 1 and 0", n1.calls(), n2.calls())
	}
}

func TestStats_UnreachableAliveMemberFailsAfterPrintingOthers(t *testing.T) {
	seed, _, _ := twoNodes(t, ringcachev1.MemberState_MEMBER_STATE_ALIVE)
	out, _, err := runCLI(t, "", "--addr", seed, "--timeout", "3s", "-o", "json", "stats")
	var rpcErr *RPCError
	if err == nil || !strings.Contains(err.Error(), "stats of n3") || !errors.As(err, &rpcErr) || !rpcErr.Unreachable {
		t.Fatalf("err = %v, want an unreachable error naming n3", err)
	}
	assertJSON(t, out, twoNodesStatsJSON)
}

func TestStats_WriteColumnsAppearWhenAnyIsSet(t *testing.T) {
	seed, _, _ := twoNodesWith(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, func(_, n2 *fakeNode) {
		n2.stats.Namespaces = []*ringcachev1.NamespaceStats{{
			Name: "orders", Gets: 4, Hits: 4, Sets: 9, WriteErrors: 2, Backpressure: 1, Refreshes: 5, PendingHits: 3,
		}}
	})
	out := mustRun(t, "--addr", seed, "stats")
	got := rows(out)
	want := [][]string{
		{"NODE", "NAMESPACE", "GETS", "HITS", "MISSES", "HIT%", "LOADS", "DEDUPED", "LOAD ERRS", "NEG HITS", "SETS", "DELS",
			"WRITE ERRS", "BACKPRESSURE", "REFRESHES", "PENDING HITS"},
		{"n1", "users", "8", "6", "2", "75.0", "2", "1", "0", "1", "4", "1", "0", "0", "0", "0"},
		{"n2", "orders", "4", "4", "0", "100.0", "0", "0", "0", "0", "9", "0", "2", "1", "5", "3"},
	}
	if len(got) < 9 || !reflect.DeepEqual(got[6:9], want) {
		t.Errorf("namespace section:\n got: %q\nwant: %q\n%s", got, want, out)
	}

	out = mustRun(t, "--addr", seed, "-o", "json", "stats")
	assertJSON(t, out, `[
		{"node":"n1","store":{"entries":10,"bytes":500,"max_bytes":1000,"evictions":3},
		 "namespaces":[{"name":"users","gets":8,"hits":6,"misses":2,"loads":2,"loads_deduplicated":1,
		   "load_errors":0,"negative_hits":1,"sets":4,"deletes":1,
		   "write_errors":0,"backpressure":0,"refreshes":0,"pending_hits":0}],
		 "forwards":5,"forward_errors":1,"forwarded_in":2,"clock_rejections":4,"rss_bytes":62914560,"memory_limit_bytes":100663296},
		{"node":"n2","store":{"entries":1,"bytes":7,"max_bytes":0,"evictions":0},
		 "namespaces":[{"name":"orders","gets":4,"hits":4,"misses":0,"loads":0,"loads_deduplicated":0,
		   "load_errors":0,"negative_hits":0,"sets":9,"deletes":0,
		   "write_errors":2,"backpressure":1,"refreshes":5,"pending_hits":3}],
		 "forwards":0,"forward_errors":0,"forwarded_in":0,"clock_rejections":0,"rss_bytes":0,"memory_limit_bytes":0}]`)
}

func TestStats_HotCacheSectionOnlyWhenSomeNodeHasOne(t *testing.T) {
	seed, _, _ := twoNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD)
	if out := mustRun(t, "--addr", seed, "stats"); strings.Contains(out, "hot cache") {
		t.Fatalf("hot cache section without a hot cache:\n%s", out)
	}

	seed, _, _ = twoNodesWith(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, func(_, n2 *fakeNode) {
		n2.stats.HotCache = &ringcachev1.HotCacheStats{Hits: 40, Fills: 2, Invalidations: 1, Resets: 0, Entries: 2, Bytes: 300, MaxBytes: 1 << 20, Streams: 1}
	})
	out := mustRun(t, "--addr", seed, "stats")
	got := rows(out)
	want := [][]string{
		{"NODE", "HITS", "FILLS", "INVALIDATIONS", "RESETS", "ENTRIES", "BYTES", "MAX BYTES", "OWNERS WATCHED"},
		{"n1", "off"},
		{"n2", "40", "2", "1", "0", "2", "300", "1048576", "1"},
	}
	if len(got) < 3 || !reflect.DeepEqual(got[len(got)-3:], want) {
		t.Errorf("hot cache section:\n got: %q\nwant: %q\n%s", got, want, out)
	}
	out = mustRun(t, "--addr", seed, "-o", "json", "stats")
	if !strings.Contains(out, `"hot_cache": {`) || strings.Count(out, `"hot_cache"`) != 1 {
		t.Errorf("JSON should carry hot_cache for n2 only:\n%s", out)
	}
}
