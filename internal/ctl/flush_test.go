package ctl

import (
	"context"
	"errors"
	"strings"
	"testing"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// FlushNamespace of the fake: a prefix flush reports the tombstone list
// full and folded.
func (f *fakeNode) FlushNamespace(_ context.Context, r *ringcachev1.FlushNamespaceRequest) (*ringcachev1.FlushNamespaceResponse, error) {
	if err := checkNamespace(r.GetNamespace()); err != nil {
		return nil, err
	}
	return &ringcachev1.FlushNamespaceResponse{Node: f.name, Epoch: 7, PrefixTombstones: 64, Folded: r.GetPrefix() != "", StreamsReset: 2}, nil
}

func TestFlush_UnreachableAliveMemberFailsAfterPrintingOthers(t *testing.T) {
	seed, _, _ := twoNodesWith(t, ringcachev1.MemberState_MEMBER_STATE_ALIVE, nil)
	out, _, err := runCLI(t, "", "--addr", seed, "--timeout", "3s", "flush", "users", "--prefix", "p")
	var rpcErr *RPCError
	if err == nil || !strings.Contains(err.Error(), "flush of n3") || !errors.As(err, &rpcErr) || !rpcErr.Unreachable {
		t.Fatalf("err = %v, want an unreachable error naming n3", err)
	}
	assertRows(t, out, [][]string{
		{"NODE", "EPOCH", "PREFIXES", "STREAMS RESET", "RESULT"},
		{"n1", "7", "64", "2", "ok, FOLDED"},
		{"n2", "7", "64", "2", "ok, FOLDED"},
		{"n3", "-", "-", "-", "FAILED"},
		{""},
		{"# FOLDED: the node remembered 64 prefix flushes of this namespace and"},
		{"# flushed every entry cached before the oldest of them, whatever its key."},
	})
}

func TestFlush_JSONAndNodeOnly(t *testing.T) {
	seed, _, _ := twoNodesWith(t, ringcachev1.MemberState_MEMBER_STATE_DEAD, nil)
	out := mustRun(t, "--addr", seed, "-o", "json", "flush", "users")
	assertJSON(t, out, `[
		{"node":"n1","addr":"`+seed+`","status":"ok","epoch":7,"prefix_tombstones":64,"folded":false,"streams_reset":2},
		{"node":"n2","addr":"`+n2Addr(t, seed)+`","status":"ok","epoch":7,"prefix_tombstones":64,"folded":false,"streams_reset":2}]`)
	out = mustRun(t, "--addr", seed, "flush", "users", "--node-only")
	assertRows(t, out, [][]string{{"NODE", "EPOCH", "PREFIXES", "STREAMS RESET", "RESULT"}, {"n1", "7", "64", "2", "ok"}})
	if _, _, err := runCLI(t, "", "--addr", seed, "flush", "x", "--node-only"); err == nil || !strings.Contains(err.Error(), `namespace "x" is not configured`) {
		t.Fatalf("flush of an unknown namespace: %v", err)
	}
}
