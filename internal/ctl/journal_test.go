package ctl

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// journalNodes is twoNodes with a write-behind journal on n1 only; n3 is
// in n3State at an address nothing listens on.
func journalNodes(t *testing.T, n3State ringcachev1.MemberState, configure func(n1, n2 *fakeNode)) (seed string, n1, n2 *fakeNode) {
	t.Helper()
	return twoNodesWith(t, n3State, func(n1, n2 *fakeNode) {
		n1.journal = &ringcachev1.JournalResponse{
			Node: "n1", Enabled: true, Pending: 12, PendingBytes: 3400, OldestPendingAgeMs: 1234,
			DeadLetters: 2, Appends: 100, Coalesced: 7, Flushed: 86, FlushFailures: 3,
			MaxPending: 1000, MaxBytes: 10000,
			ReplicaPending: 40, ReplicaBytes: 900, TakenOver: 5, Takeovers: 1, UnderReplicated: 4,
			ReplicationInSync: true, JournalId: "j1",
			ReplicaOrigins: []*ringcachev1.ReplicaOrigin{{Node: "n2", JournalId: "j2", Records: 30}, {Node: "n9", JournalId: "j9", Records: 10, Departed: true}},
		}
		n1.flush = &ringcachev1.FlushJournalResponse{Flushed: 12, Pending: 1}
		if configure != nil {
			configure(n1, n2)
		}
	})
}

func TestJournal_TableAsksEveryAliveMember(t *testing.T) {
	seed, _, _ := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, nil)
	want := [][]string{
		{"NODE", "OWNED", "REPLICA", "TAKEN OVER", "BYTES", "OLDEST", "DEAD", "FLUSHED", "FAILURES", "UNDER-REPL", "SYNC", "LIMIT"},
		{"n1", "12", "40", "5", "3400", "1.2s", "2", "86", "3", "4", "yes", "34.0%"},
		{"n2", "(no write-behind)"},
		{""},
		{"# n1 holds 10 copies of the writes of departed n9; it is taking them over"},
		{"# n1 holds 2 dead letters: ringcachectl --addr " + seed + " journal dead"},
	}
	for _, args := range [][]string{{"journal"}, {"journal", "status"}} {
		out := mustRun(t, append([]string{"--addr", seed}, args...)...)
		assertRows(t, out, want)
	}
}

func TestJournal_JSONListsEveryNode(t *testing.T) {
	seed, _, _ := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_LEFT, nil)
	out := mustRun(t, "--addr", seed, "-o", "json", "journal")
	assertJSON(t, out, `[
		{"node":"n1","addr":"`+seed+`","enabled":true,"pending":12,"pending_bytes":3400,
		 "oldest_pending_age_ms":1234,"dead_letters":2,"appends":100,"coalesced":7,"flushed":86,
		 "flush_failures":3,"max_pending":1000,"max_bytes":10000,
		 "replica_pending":40,"replica_bytes":900,"taken_over":5,"takeovers":1,"handed_over":0,
		 "under_replicated":4,"replication_in_sync":true,"replicated":0,"replication_failures":0,
		 "replication_p50_us":0,"replication_p99_us":0,"journal_id":"j1",
		 "replica_origins":[{"node":"n2","journal_id":"j2","records":30,"departed":false},
		                    {"node":"n9","journal_id":"j9","records":10,"departed":true}]},
		{"node":"n2","addr":"`+n2Addr(t, seed)+`","enabled":false,"pending":0,"pending_bytes":0,
		 "oldest_pending_age_ms":0,"dead_letters":0,"appends":0,"coalesced":0,"flushed":0,
		 "flush_failures":0,"max_pending":0,"max_bytes":0,
		 "replica_pending":0,"replica_bytes":0,"taken_over":0,"takeovers":0,"handed_over":0,
		 "under_replicated":0,"replication_in_sync":false,"replicated":0,"replication_failures":0,
		 "replication_p50_us":0,"replication_p99_us":0,"journal_id":"","replica_origins":[]}]`)
}

// n2Addr returns the gRPC address seed reports for n2.
func n2Addr(t *testing.T, seed string) string {
	t.Helper()
	for _, m := range rows(mustRun(t, "--addr", seed, "members")) {
		if m[0] == "n2" {
			return m[1]
		}
	}
	t.Fatal("n2 is not a member")
	return ""
}

func TestJournal_NodeOnlyAsksOnlyAddr(t *testing.T) {
	seed, _, _ := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, nil)
	out := mustRun(t, "--addr", seed, "journal", "--node-only")
	if got := rows(out); len(got) < 2 || got[1][0] != "n1" || strings.Contains(out, "n2") {
		t.Errorf("journal --node-only must list only n1:\n%s", out)
	}
	out = mustRun(t, "--addr", seed, "journal", "status", "--node-only")
	if strings.Contains(out, "n2") {
		t.Errorf("journal status --node-only must list only n1:\n%s", out)
	}
}

func TestJournal_UnreachableAliveMemberFailsAfterPrintingOthers(t *testing.T) {
	seed, _, _ := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_ALIVE, nil)
	out, _, err := runCLI(t, "", "--addr", seed, "--timeout", "3s", "journal")
	var rpcErr *RPCError
	if err == nil || !strings.Contains(err.Error(), "journal of n3") || !errors.As(err, &rpcErr) || !rpcErr.Unreachable {
		t.Fatalf("err = %v, want an unreachable error naming n3", err)
	}
	if got := rows(out); len(got) < 3 || got[1][0] != "n1" || got[2][0] != "n2" {
		t.Errorf("n1 and n2 must still be printed:\n%s", out)
	}
}

func TestFormatAge(t *testing.T) {
	for ms, want := range map[int64]string{
		0: "-", -5: "-", 350: "350ms", 1000: "1.0s", 1234: "1.2s", 59_999: "59.9s",
		60_000: "1m0s", 184_000: "3m4s", 3_599_999: "59m59s", 3_600_000: "1h0m", 93_900_000: "26h5m",
	} {
		if got := formatAge(ms); got != want {
			t.Errorf("formatAge(%d) = %q, want %q", ms, got, want)
		}
	}
}

func TestJournalFill_TighterBoundOrUnbounded(t *testing.T) {
	for _, tc := range []struct {
		j    journalJSON
		want string
	}{
		{journalJSON{Pending: 12, MaxPending: 1000000}, "0.0%"},
		{journalJSON{Pending: 500, MaxPending: 1000, PendingBytes: 10, MaxBytes: 100}, "50.0%"},
		{journalJSON{Pending: 5, MaxPending: 1000, PendingBytes: 90, MaxBytes: 100}, "90.0%"},
		{journalJSON{Pending: 5}, "-"},
	} {
		if got := journalFill(tc.j); got != tc.want {
			t.Errorf("journalFill(%+v) = %q, want %q", tc.j, got, tc.want)
		}
	}
}

func TestJournalFlush_EveryAliveNodeSkipsNodesWithoutWriteBehind(t *testing.T) {
	seed, n1, n2 := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, nil)
	out := mustRun(t, "--addr", seed, "journal", "flush")
	assertRows(t, out, [][]string{
		{"NODE", "FLUSHED", "PENDING", "RESULT"},
		{"n1", "12", "1", "ok"},
		{"n2", "-", "-", "(no write-behind)"},
	})
	out = mustRun(t, "--addr", seed, "-o", "json", "journal", "flush")
	assertJSON(t, out, `[
		{"node":"n1","addr":"`+seed+`","status":"ok","flushed":12,"pending":1},
		{"node":"n2","addr":"`+n2Addr(t, seed)+`","status":"no_write_behind","flushed":0,"pending":0}]`)
	n1.mu.Lock()
	n2.mu.Lock()
	defer n1.mu.Unlock()
	defer n2.mu.Unlock()
	if n1.flushCalls != 2 || n2.flushCalls != 2 {
		t.Errorf("flush calls n1=%d n2=%d, want 2 each", n1.flushCalls, n2.flushCalls)
	}
}

func TestJournalFlush_PartialFailurePrintsOthersAndFails(t *testing.T) {
	seed, _, _ := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, func(_, n2 *fakeNode) {
		n2.journal = &ringcachev1.JournalResponse{Node: "n2", Enabled: true}
		n2.flushErr = status.Error(codes.Unavailable, "flush incomplete: database down")
	})
	out, _, err := runCLI(t, "", "--addr", seed, "journal", "flush")
	if err == nil || !strings.Contains(err.Error(), "flush of n2 (") ||
		!strings.Contains(err.Error(), "UNAVAILABLE: flush incomplete: database down") {
		t.Fatalf("err = %v, want the flush failure of n2", err)
	}
	assertRows(t, out, [][]string{
		{"NODE", "FLUSHED", "PENDING", "RESULT"},
		{"n1", "12", "1", "ok"},
		{"n2", "-", "-", "FAILED"},
	})

	out, _, err = runCLI(t, "", "--addr", seed, "-o", "json", "journal", "flush")
	if err == nil {
		t.Fatal("flush -o json with a failed node succeeded")
	}
	assertJSON(t, out, `[
		{"node":"n1","addr":"`+seed+`","status":"ok","flushed":12,"pending":1},
		{"node":"n2","addr":"`+n2Addr(t, seed)+`","status":"failed","flushed":0,"pending":0,
		 "error":"UNAVAILABLE: flush incomplete: database down"}]`)
}

func TestJournalFlush_NodeOnly(t *testing.T) {
	seed, _, n2 := journalNodes(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, nil)
	out := mustRun(t, "--addr", seed, "journal", "flush", "--node-only")
	assertRows(t, out, [][]string{{"NODE", "FLUSHED", "PENDING", "RESULT"}, {"n1", "12", "1", "ok"}})
	n2.mu.Lock()
	defer n2.mu.Unlock()
	if n2.flushCalls != 0 {
		t.Errorf("n2 flushed %d times with --node-only", n2.flushCalls)
	}
}

func TestJournal_NodeWithoutWriteBehindIsExplained(t *testing.T) {
	lis, f := listen(t), newFakeNode("n2")
	addr := lis.Addr().String()
	f.members = []*ringcachev1.Member{{Name: "n2", GrpcAddr: addr, State: ringcachev1.MemberState_MEMBER_STATE_ALIVE}}
	serve(t, lis, f)
	want := "no write-behind journal on " + addr + ": none of its namespaces uses write-behind"
	for _, args := range [][]string{
		{"journal", "flush", "--node-only"}, {"journal", "dead"}, {"journal", "retry", "users", "42"}, {"journal", "drop", "users", "42"},
	} {
		_, _, err := runCLI(t, "", append([]string{"--addr", addr}, args...)...)
		var rpcErr *RPCError
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.As(err, &rpcErr) || rpcErr.Code != codes.FailedPrecondition {
			t.Errorf("%v: err = %v, want prefix %q wrapping FAILED_PRECONDITION", args, err, want)
		}
	}
	out, _, err := runCLI(t, "", "--addr", addr, "journal", "flush")
	if err == nil || !strings.Contains(err.Error(), "no asked node has a write-behind journal") {
		t.Errorf("flush of a cluster without write-behind: err = %v", err)
	}
	assertRows(t, out, [][]string{{"NODE", "FLUSHED", "PENDING", "RESULT"}, {"n2", "-", "-", "(no write-behind)"}})
}

func deadNode() *fakeNode {
	f := newFakeNode("n1")
	f.journal = &ringcachev1.JournalResponse{Node: "n1", Enabled: true, DeadLetters: 3}
	long := "INVALID_ARGUMENT: row rejected by constraint users_email_key\n\tdetail: " + strings.Repeat("x", 100)
	f.dead = []*ringcachev1.DeadLetter{
		{Namespace: "users", Key: "42", Version: 7, Attempts: 5, LastError: long, ValueBytes: 128},
		{Namespace: "users", Key: "43", Delete: true, Version: 9, Attempts: 1, LastError: "permission denied"},
		{Namespace: "orders", Key: "a\tb", Version: 2, Attempts: 2, LastError: "boom", ValueBytes: 3},
	}
	return f
}

func TestJournalDead_TableCutsLastError(t *testing.T) {
	f := deadNode()
	addr := startNode(t, f)
	out := mustRun(t, "--addr", addr, "journal", "dead")
	cut := "INVALID_ARGUMENT: row rejected by constraint users_email_key detail: " + strings.Repeat("x", 10) + "…"
	assertRows(t, out, [][]string{
		{"NAMESPACE", "KEY", "KIND", "ATTEMPTS", "BYTES", "LAST ERROR"},
		{"users", "42", "set", "5", "128", cut},
		{"users", "43", "delete", "1", "0", "permission denied"},
		{"orders", `"a\tb"`, "set", "2", "3", "boom"},
	})
	if n := len([]rune(cut)); n != lastErrorWidth {
		t.Errorf("cut error has %d runes, want %d", n, lastErrorWidth)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deadLimit != 100 {
		t.Errorf("DeadLetters limit = %d, want the default 100", f.deadLimit)
	}
}

func TestJournalDead_JSONKeepsWholeError(t *testing.T) {
	f := deadNode()
	addr := startNode(t, f)
	out, stderr, err := runCLI(t, "", "--addr", addr, "-o", "json", "journal", "dead", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, `[
		{"namespace":"users","key":"42","kind":"set","version":7,"attempts":5,"value_bytes":128,
		 "last_error":"INVALID_ARGUMENT: row rejected by constraint users_email_key\n\tdetail: `+strings.Repeat("x", 100)+`"},
		{"namespace":"users","key":"43","kind":"delete","version":9,"attempts":1,"value_bytes":0,
		 "last_error":"permission denied"}]`)
	if !strings.Contains(stderr, "raise --limit") {
		t.Errorf("stderr = %q, want a hint that more may exist", stderr)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deadLimit != 2 {
		t.Errorf("DeadLetters limit = %d, want 2", f.deadLimit)
	}
}

func TestJournalDead_NoneSaysSo(t *testing.T) {
	f := newFakeNode("n1")
	f.journal = &ringcachev1.JournalResponse{Node: "n1", Enabled: true}
	addr := startNode(t, f)
	out, stderr, err := runCLI(t, "", "--addr", addr, "journal", "dead")
	if err != nil || out != "" || stderr != "(no dead letters on "+addr+")\n" {
		t.Errorf("out=%q stderr=%q err=%v, want only a note on stderr", out, stderr, err)
	}
	if out := mustRun(t, "--addr", addr, "-o", "json", "journal", "dead"); strings.TrimSpace(out) != "[]" {
		t.Errorf("-o json = %q, want []", out)
	}
}

func TestJournalRetryAndDrop(t *testing.T) {
	f := deadNode()
	addr := startNode(t, f)
	if out := mustRun(t, "--addr", addr, "journal", "retry", "users", "42"); out != "OK\n" {
		t.Errorf("retry printed %q, want OK", out)
	}
	if out := mustRun(t, "--addr", addr, "-o", "json", "journal", "drop", "users", "43"); strings.TrimSpace(out) != `{
  "ok": true
}` {
		t.Errorf("drop -o json printed %q", out)
	}
	f.mu.Lock()
	actions := f.actions
	f.mu.Unlock()
	if want := []string{"retry users/42", "drop users/43"}; !reflect.DeepEqual(actions, want) {
		t.Errorf("actions = %q, want %q", actions, want)
	}
	for _, verb := range []string{"retry", "drop"} {
		_, _, err := runCLI(t, "", "--addr", addr, "journal", verb, "users", "42")
		want := "no dead letter for users/42 on " + addr
		var rpcErr *RPCError
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.As(err, &rpcErr) || rpcErr.Code != codes.NotFound {
			t.Errorf("%s of a missing dead letter: err = %v, want prefix %q wrapping NOT_FOUND", verb, err, want)
		}
	}
}

func TestJournal_HelpSaysDeadLettersArePerNode(t *testing.T) {
	for _, args := range [][]string{
		{"journal", "--help"}, {"journal", "dead", "--help"}, {"journal", "retry", "--help"}, {"journal", "drop", "--help"},
	} {
		out := mustRun(t, args...)
		if !strings.Contains(out, "per node") && !strings.Contains(out, "node at --addr only") {
			t.Errorf("%v does not say dead letters are per node:\n%s", args, out)
		}
	}
	out := mustRun(t, "journal", "dead", "--help")
	for _, want := range []string{"node at --addr only", "disk of the node", "--limit"} {
		if !strings.Contains(out, want) {
			t.Errorf("journal dead --help lacks %q:\n%s", want, out)
		}
	}
}

func TestJournal_RejectsStrayArgs(t *testing.T) {
	_, _, err := runCLI(t, "", "journal", "bogus")
	if err == nil || !strings.Contains(err.Error(), `unknown command "bogus"`) {
		t.Errorf("journal bogus: err = %v", err)
	}
}
