package ctl

import (
	"strings"
	"testing"
	"time"
)

func TestGet_FoundPrintsRawValue(t *testing.T) {
	f := newFakeNode("n1")
	f.data["users/42"] = []byte("alice\tsmith")
	addr := startNode(t, f)
	if out := mustRun(t, "--addr", addr, "get", "users", "42"); out != "alice\tsmith\n" {
		t.Errorf("stdout = %q, want raw value and newline", out)
	}
}

func TestGet_NotFoundPrintsToStderrAndSucceeds(t *testing.T) {
	addr := startNode(t, newFakeNode("n1"))
	out, stderr, err := runCLI(t, "", "--addr", addr, "get", "users", "missing")
	if err != nil {
		t.Fatalf("not found must not fail: %v", err)
	}
	if out != "" || stderr != "(not found)\n" {
		t.Errorf("stdout %q stderr %q, want empty stdout and (not found) on stderr", out, stderr)
	}
	assertJSON(t, mustRun(t, "--addr", addr, "-o", "json", "get", "users", "missing"), `{"found":false}`)
}

func TestGet_JSONUsesBase64ForInvalidUTF8(t *testing.T) {
	f := newFakeNode("n1")
	f.data["users/text"] = []byte("héllo")
	f.data["users/empty"] = []byte{}
	f.data["users/bin"] = []byte{0xff, 0x00, 0x01}
	addr := startNode(t, f)
	assertJSON(t, mustRun(t, "--addr", addr, "-o", "json", "get", "users", "text"), `{"found":true,"value":"héllo"}`)
	assertJSON(t, mustRun(t, "--addr", addr, "-o", "json", "get", "users", "empty"), `{"found":true,"value":""}`)
	assertJSON(t, mustRun(t, "--addr", addr, "-o", "json", "get", "users", "bin"), `{"found":true,"value_base64":"/wAB"}`)
}

func TestGetMany_TableAndJSON(t *testing.T) {
	f := newFakeNode("n1")
	f.data["users/a"] = []byte("1")
	f.data["users/c"] = []byte("line\nbreak")
	addr := startNode(t, f)
	assertRows(t, mustRun(t, "--addr", addr, "get", "users", "a", "b", "c"), [][]string{
		{"KEY", "FOUND", "VALUE"},
		{"a", "yes", "1"},
		{"b", "no"},
		{"c", "yes", `"line\nbreak"`},
	})
	assertJSON(t, mustRun(t, "--addr", addr, "-o", "json", "get", "users", "a", "b"), `{"results":[
		{"key":"a","found":true,"value":"1"},{"key":"b","found":false}]}`)
}

func TestGetMany_PerKeyErrorIsShownAndFails(t *testing.T) {
	f := newFakeNode("n1")
	f.data["users/a"] = []byte("1")
	addr := startNode(t, f)
	out, _, err := runCLI(t, "", "--addr", addr, "get", "users", "a", "bad")
	if err == nil || err.Error() != "1 of 2 keys failed" {
		t.Errorf("err = %v, want 1 of 2 keys failed", err)
	}
	assertRows(t, out, [][]string{
		{"KEY", "FOUND", "VALUE"},
		{"a", "yes", "1"},
		{"bad", "error", "INVALID_ARGUMENT: key too long"},
	})
}

func TestSet_StoresValueWithTTLAndPrintsOK(t *testing.T) {
	f := newFakeNode("n1")
	addr := startNode(t, f)
	if out := mustRun(t, "--addr", addr, "set", "users", "42", "bob", "--ttl", "30s"); out != "OK\n" {
		t.Errorf("stdout = %q, want OK", out)
	}
	f.mu.Lock()
	got, ttl := string(f.data["users/42"]), f.lastSet.GetTtl().AsDuration()
	f.mu.Unlock()
	if got != "bob" || ttl != 30*time.Second {
		t.Errorf("stored %q ttl %s, want bob 30s", got, ttl)
	}
	if out := mustRun(t, "--addr", addr, "get", "users", "42"); out != "bob\n" {
		t.Errorf("get after set = %q", out)
	}
}

func TestSet_DashReadsStdinWithoutTTL(t *testing.T) {
	f := newFakeNode("n1")
	addr := startNode(t, f)
	out, _, err := runCLI(t, "from\nstdin", "--addr", addr, "-o", "json", "set", "users", "k", "-")
	if err != nil {
		t.Fatal(err)
	}
	assertJSON(t, out, `{"ok":true}`)
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := string(f.data["users/k"]); got != "from\nstdin" {
		t.Errorf("stored %q, want stdin contents", got)
	}
	if f.lastSet.GetTtl() != nil {
		t.Errorf("ttl = %v, want unset so the namespace ttl applies", f.lastSet.GetTtl())
	}
}

func TestSet_NegativeTTLIsRejected(t *testing.T) {
	addr := startNode(t, newFakeNode("n1"))
	_, _, err := runCLI(t, "", "--addr", addr, "set", "users", "k", "v", "--ttl", "-1s")
	if err == nil || !strings.Contains(err.Error(), "--ttl must not be negative") {
		t.Errorf("err = %v, want negative ttl error", err)
	}
}

func TestDel_RemovesKeyAndPrintsOK(t *testing.T) {
	f := newFakeNode("n1")
	f.data["users/42"] = []byte("x")
	addr := startNode(t, f)
	if out := mustRun(t, "--addr", addr, "del", "users", "42"); out != "OK\n" {
		t.Errorf("stdout = %q, want OK", out)
	}
	f.mu.Lock()
	_, ok := f.data["users/42"]
	f.mu.Unlock()
	if ok {
		t.Error("key still present after del")
	}
}
