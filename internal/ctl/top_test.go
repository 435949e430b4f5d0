package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// seqNode is a fakeNode whose Stats answers are seq in turn, the last one
// repeating, so that counters advance between the samples of top.
type seqNode struct {
	*fakeNode
	seqMu sync.Mutex
	seq   []*ringcachev1.StatsResponse
	asked int
}

func (s *seqNode) Stats(context.Context, *ringcachev1.StatsRequest) (*ringcachev1.StatsResponse, error) {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	r := s.seq[min(s.asked, len(s.seq)-1)]
	s.asked++
	return r, nil
}

func (s *seqNode) statsAsked() int {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	return s.asked
}

func serveSeq(t *testing.T, lis net.Listener, s *seqNode) *grpc.Server {
	t.Helper()
	srv := grpc.NewServer()
	ringcachev1.RegisterCacheServer(srv, s)
	ringcachev1.RegisterAdminServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return srv
}

// topNodes is a cluster for top: n1 (the seed, with a write-behind journal)
// and n2 answer seq1 and seq2 in turn; n3, in n3State, is listed at an
// address nothing listens on.
type topNodes struct {
	seed, addr2 string
	n1, n2      *seqNode
	srv1        *grpc.Server
}

func newTopNodes(t *testing.T, n3State ringcachev1.MemberState, seq1, seq2 []*ringcachev1.StatsResponse) topNodes {
	t.Helper()
	lis1, lis2 := listen(t), listen(t)
	tn := topNodes{
		seed: lis1.Addr().String(), addr2: lis2.Addr().String(),
		n1: &seqNode{fakeNode: newFakeNode("n1"), seq: seq1},
		n2: &seqNode{fakeNode: newFakeNode("n2"), seq: seq2},
	}
	members := []*ringcachev1.Member{
		{Name: "n2", GrpcAddr: tn.addr2, State: ringcachev1.MemberState_MEMBER_STATE_ALIVE},
		{Name: "n1", GrpcAddr: tn.seed, State: ringcachev1.MemberState_MEMBER_STATE_ALIVE},
		{Name: "n3", GrpcAddr: deadAddr(t), State: n3State},
	}
	tn.n1.members, tn.n2.members = members, members
	tn.n1.journal = &ringcachev1.JournalResponse{
		Node: "n1", Enabled: true, Pending: 12, PendingBytes: 3400, OldestPendingAgeMs: 1234, DeadLetters: 2,
		MaxPending: 1000,
	}
	tn.srv1 = serveSeq(t, lis1, tn.n1)
	serveSeq(t, lis2, tn.n2)
	return tn
}

func n1Stats(entries, bytes, evictions, gets, hits, sets, deletes, forwards uint64) *ringcachev1.StatsResponse {
	return &ringcachev1.StatsResponse{
		Node:  "n1",
		Store: &ringcachev1.StoreStats{Entries: entries, Bytes: bytes, MaxBytes: 1000, Evictions: evictions},
		Namespaces: []*ringcachev1.NamespaceStats{
			{Name: "users", Gets: gets - 2, Hits: hits - 1, Sets: sets, Deletes: deletes},
			{Name: "orders", Gets: 2, Hits: 1},
		},
		Forwards: forwards,
	}
}

var (
	// Two seconds apart: 10 gets/s (75% hits), 2 sets/s, 1 delete/s,
	// 2 evictions/s, 2 forwards/s. The third sample is after a restart.
	n1First   = n1Stats(10, 500, 3, 8, 6, 4, 1, 5)
	n1Second  = n1Stats(12, 600, 7, 28, 21, 8, 3, 9)
	n1Restart = n1Stats(1, 10, 0, 3, 2, 0, 0, 0)
	n2Idle    = &ringcachev1.StatsResponse{
		Node:       "n2",
		Store:      &ringcachev1.StoreStats{Entries: 1, Bytes: 7},
		Namespaces: []*ringcachev1.NamespaceStats{{Name: "orders", Gets: 4, Hits: 4, Sets: 9}},
	}
)

// fakeClock starts at 12:00:00 UTC; sleeping advances it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(max(d, 0))
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) config(iterations int) topConfig {
	return topConfig{interval: 2 * time.Second, iterations: iterations, now: c.now, sleep: c.sleep}
}

// runTopWith runs top against seed with output and c, failing on error.
func runTopWith(t *testing.T, seed, output string, c topConfig) string {
	t.Helper()
	o := &options{addr: seed, output: output, timeout: 3 * time.Second}
	var out bytes.Buffer
	if err := o.runTop(t.Context(), &out, c); err != nil {
		t.Fatalf("top: %v\n%s", err, out.String())
	}
	return out.String()
}

// snapshots splits table output at the blank lines between snapshots.
func snapshots(out string) []string {
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n\n")
}

var topHeader = []string{"NODE", "OPS/S", "HIT%", "GETS/S", "SETS/S", "MEM", "ENTRIES", "EVICT/S", "FWD/S", "JOURNAL", "LAG", "DEAD"}

func TestTop_RatesFromCounterDeltas(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD,
		[]*ringcachev1.StatsResponse{n1First, n1Second, n1Restart}, []*ringcachev1.StatsResponse{n2Idle})
	out := runTopWith(t, nodes.seed, outputTable, newFakeClock().config(3))
	snaps := snapshots(out)
	if len(snaps) != 3 {
		t.Fatalf("got %d snapshots, want 3:\n%s", len(snaps), out)
	}
	assertRows(t, snaps[0], [][]string{
		{"# 12:00:00", "sample 1", "every 2s"},
		topHeader,
		{"n1", "-", "-", "-", "-", "500B/1000B 50.0%", "10", "-", "-", "12", "1.2s", "2"},
		{"n2", "-", "-", "-", "-", "7B", "1", "-", "-", "-", "-", "-"},
		{"TOTAL", "-", "-", "-", "-", "507B/1000B 50.7%", "11", "-", "-", "12", "1.2s", "2"},
		{"# rates (/s, HIT%) appear from the next sample"},
	})
	assertRows(t, snaps[1], [][]string{
		{"# 12:00:02", "sample 2", "every 2s"},
		topHeader,
		{"n1", "13.0", "75.0", "10.0", "2.0", "600B/1000B 60.0%", "12", "2.0", "2.0", "12", "1.2s", "2"},
		{"n2", "0.0", "-", "0.0", "0.0", "7B", "1", "0.0", "0.0", "-", "-", "-"},
		{"TOTAL", "13.0", "75.0", "10.0", "2.0", "607B/1000B 60.7%", "13", "2.0", "2.0", "12", "1.2s", "2"},
	})
	// n1's counters went down: it restarted, its rates are unknown again.
	assertRows(t, snaps[2], [][]string{
		{"# 12:00:04", "sample 3", "every 2s"},
		topHeader,
		{"n1", "-", "-", "-", "-", "10B/1000B 1.0%", "1", "-", "-", "12", "1.2s", "2"},
		{"n2", "0.0", "-", "0.0", "0.0", "7B", "1", "0.0", "0.0", "-", "-", "-"},
		{"TOTAL", "-", "-", "-", "-", "17B/1000B 1.7%", "2", "-", "-", "12", "1.2s", "2"},
	})
	if nodes.n1.statsAsked() != 3 || nodes.n2.statsAsked() != 3 {
		t.Errorf("stats asked n1=%d n2=%d, want 3 each", nodes.n1.statsAsked(), nodes.n2.statsAsked())
	}
}

func TestTop_JSONRates(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_LEFT,
		[]*ringcachev1.StatsResponse{n1First, n1Second}, []*ringcachev1.StatsResponse{n2Idle})
	out := runTopWith(t, nodes.seed, outputJSON, newFakeClock().config(2))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want one per snapshot:\n%s", len(lines), out)
	}
	journal := `{"pending":12,"pending_bytes":3400,"oldest_pending_age_ms":1234,"dead_letters":2}`
	assertJSON(t, lines[0], fmt.Sprintf(`{"time":"2026-01-02T12:00:00Z","sample":1,"nodes":[
		{"node":"n1","addr":%q,"ops_per_sec":null,"gets_per_sec":null,"sets_per_sec":null,"deletes_per_sec":null,
		 "hit_percent":null,"evictions_per_sec":null,"forwards_per_sec":null,
		 "mem_bytes":500,"mem_max_bytes":1000,"entries":10,"journal":%s},
		{"node":"n2","addr":%q,"ops_per_sec":null,"gets_per_sec":null,"sets_per_sec":null,"deletes_per_sec":null,
		 "hit_percent":null,"evictions_per_sec":null,"forwards_per_sec":null,
		 "mem_bytes":7,"mem_max_bytes":0,"entries":1,"journal":null}],
		"total":{"ops_per_sec":null,"gets_per_sec":null,"sets_per_sec":null,"deletes_per_sec":null,
		 "hit_percent":null,"evictions_per_sec":null,"forwards_per_sec":null,
		 "mem_bytes":507,"mem_max_bytes":1000,"entries":11,"journal":%s}}`, nodes.seed, journal, nodes.addr2, journal))
	assertJSON(t, lines[1], fmt.Sprintf(`{"time":"2026-01-02T12:00:02Z","sample":2,"nodes":[
		{"node":"n1","addr":%q,"ops_per_sec":13,"gets_per_sec":10,"sets_per_sec":2,"deletes_per_sec":1,
		 "hit_percent":75,"evictions_per_sec":2,"forwards_per_sec":2,
		 "mem_bytes":600,"mem_max_bytes":1000,"entries":12,"journal":%s},
		{"node":"n2","addr":%q,"ops_per_sec":0,"gets_per_sec":0,"sets_per_sec":0,"deletes_per_sec":0,
		 "hit_percent":null,"evictions_per_sec":0,"forwards_per_sec":0,
		 "mem_bytes":7,"mem_max_bytes":0,"entries":1,"journal":null}],
		"total":{"ops_per_sec":13,"gets_per_sec":10,"sets_per_sec":2,"deletes_per_sec":1,
		 "hit_percent":75,"evictions_per_sec":2,"forwards_per_sec":2,
		 "mem_bytes":607,"mem_max_bytes":1000,"entries":13,"journal":%s}}`, nodes.seed, journal, nodes.addr2, journal))
}

func TestTop_UnreachableNodeDoesNotStopTheOthers(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_ALIVE,
		[]*ringcachev1.StatsResponse{n1First}, []*ringcachev1.StatsResponse{n2Idle})
	out := mustRun(t, "--addr", nodes.seed, "--timeout", "3s", "top", "-n", "2", "--interval", "10ms")
	snaps := snapshots(out)
	if len(snaps) != 2 {
		t.Fatalf("got %d snapshots, want 2:\n%s", len(snaps), out)
	}
	got := rows(snaps[1])
	if len(got) != 7 {
		t.Fatalf("second snapshot has %d rows, want header, n1, n2, n3, TOTAL and the error:\n%s", len(got), snaps[1])
	}
	if got[2][0] != "n1" || got[2][1] != "0.0" || got[3][0] != "n2" || got[3][1] != "0.0" {
		t.Errorf("n1 and n2 must show rates:\n%s", snaps[1])
	}
	if want := []string{"n3", "unreachable"}; strings.Join(got[4], "|") != strings.Join(want, "|") {
		t.Errorf("n3 row = %q, want %q", got[4], want)
	}
	if got[5][0] != "TOTAL" {
		t.Errorf("TOTAL row = %q", got[5])
	}
	if !strings.HasPrefix(got[6][0], "# n3 (") || !strings.Contains(got[6][0], "cannot reach ringcache node") {
		t.Errorf("error line = %q, want the unreachable error of n3", got[6])
	}

	out = mustRun(t, "--addr", nodes.seed, "--timeout", "3s", "-o", "json", "top", "--once")
	var snap struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &snap); err != nil {
		t.Fatalf("top -o json: %v\n%s", err, out)
	}
	if len(snap.Nodes) != 3 || snap.Nodes[2]["node"] != "n3" || snap.Nodes[2]["unreachable"] != true ||
		snap.Nodes[2]["error"] == nil || snap.Nodes[2]["mem_bytes"] != nil || snap.Nodes[0]["mem_bytes"] == nil {
		t.Errorf("nodes = %v, want n1 and n2 with metrics and n3 unreachable without", snap.Nodes)
	}
}

func TestTop_IterationsAndOnce(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD,
		[]*ringcachev1.StatsResponse{n1First}, []*ringcachev1.StatsResponse{n2Idle})
	out := mustRun(t, "--addr", nodes.seed, "top", "--iterations", "3", "--interval", "1ms")
	for i, snap := range snapshots(out) {
		if want := fmt.Sprintf("sample %d", i+1); len(rows(snap)[0]) < 2 || rows(snap)[0][1] != want {
			t.Errorf("snapshot %d header %q, want %q", i, rows(snap)[0], want)
		}
	}
	if n := len(snapshots(out)); n != 3 || nodes.n1.statsAsked() != 3 || nodes.n2.statsAsked() != 3 {
		t.Errorf("%d snapshots, stats asked n1=%d n2=%d; want 3 each:\n%s", n, nodes.n1.statsAsked(), nodes.n2.statsAsked(), out)
	}

	out = mustRun(t, "--addr", nodes.seed, "top", "--once")
	if n := len(snapshots(out)); n != 1 || strings.Contains(out, "appear from the next sample") {
		t.Errorf("--once: %d snapshots, want 1 without the rates hint:\n%s", n, out)
	}

	before := nodes.n2.statsAsked()
	out = mustRun(t, "--addr", nodes.seed, "top", "-n", "1", "--node-only")
	if strings.Contains(out, "n2") || !strings.Contains(out, "n1") || nodes.n2.statsAsked() != before {
		t.Errorf("--node-only must ask n1 only:\n%s", out)
	}
}

func TestTop_JSONLinesParse(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD,
		[]*ringcachev1.StatsResponse{n1First}, []*ringcachev1.StatsResponse{n2Idle})
	out := mustRun(t, "--addr", nodes.seed, "-o", "json", "top", "-n", "3", "--interval", "1ms")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), out)
	}
	for i, line := range lines {
		var snap struct {
			Time   time.Time `json:"time"`
			Sample int       `json:"sample"`
			Nodes  []struct {
				Node      string   `json:"node"`
				OpsPerSec *float64 `json:"ops_per_sec"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(line), &snap); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
		if snap.Sample != i+1 || snap.Time.IsZero() || len(snap.Nodes) != 2 {
			t.Errorf("line %d: sample %d, time %v, %d nodes; want sample %d of 2 nodes", i+1, snap.Sample, snap.Time, len(snap.Nodes), i+1)
			continue
		}
		if hasRate := snap.Nodes[0].OpsPerSec != nil; hasRate != (i > 0) {
			t.Errorf("line %d: ops_per_sec %v, want rates from the second sample on", i+1, snap.Nodes[0].OpsPerSec)
		}
	}
}

func TestTop_RedrawsUntilInterrupted(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD,
		[]*ringcachev1.StatsResponse{n1First, n1Second}, []*ringcachev1.StatsResponse{n2Idle})
	clock := newFakeClock()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sleeps := 0
	c := clock.config(0)
	c.redraw = true
	c.sleep = func(ctx context.Context, d time.Duration) error {
		if sleeps++; sleeps == 2 {
			cancel() // Ctrl-C while waiting for the third sample
		}
		return clock.sleep(ctx, d)
	}
	o := &options{addr: nodes.seed, output: outputTable, timeout: 3 * time.Second}
	var out bytes.Buffer
	if err := o.runTop(ctx, &out, c); err != nil {
		t.Fatalf("an interrupted top must exit cleanly, got %v", err)
	}
	frames := strings.Split(out.String(), clearScreen)
	if len(frames) != 3 || frames[0] != "" {
		t.Fatalf("want two frames each after a clear screen, got %q", out.String())
	}
	if !strings.Contains(frames[1], "sample 1") || !strings.Contains(frames[2], "sample 2") ||
		!strings.Contains(frames[2], "(Ctrl-C to quit)") || !strings.Contains(frames[2], "13.0") {
		t.Errorf("frames:\n%s", out.String())
	}
}

func TestTop_SeedLostLaterIsShownNotFatal(t *testing.T) {
	nodes := newTopNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD,
		[]*ringcachev1.StatsResponse{n1First}, []*ringcachev1.StatsResponse{n2Idle})
	clock := newFakeClock()
	c := clock.config(2)
	c.sleep = func(ctx context.Context, d time.Duration) error {
		nodes.srv1.Stop()
		return clock.sleep(ctx, d)
	}
	out := runTopWith(t, nodes.seed, outputJSON, c)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var second struct {
		Sample int    `json:"sample"`
		Error  string `json:"error"`
	}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &second) != nil || second.Sample != 2 ||
		!strings.Contains(second.Error, "cannot reach ringcache node at "+nodes.seed) {
		t.Errorf("want a second snapshot naming the lost seed, got:\n%s", out)
	}
}

func TestTop_Errors(t *testing.T) {
	addr := deadAddr(t)
	_, _, err := runCLI(t, "", "--addr", addr, "--timeout", "3s", "top", "-n", "2")
	if err == nil || !strings.Contains(err.Error(), "cannot reach ringcache node at "+addr) {
		t.Errorf("unreachable --addr: err = %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"top", "--interval", "0s"}, "--interval must be positive"},
		{[]string{"top", "-n", "-1"}, "--iterations must not be negative"},
		{[]string{"top", "--once", "-n", "3"}, "--once conflicts with --iterations 3"},
		{[]string{"top", "extra"}, "unknown command"},
	} {
		_, _, err := runCLI(t, "", append([]string{"--addr", addr}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}
