package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func TestRun_FailurePrintsPrefixedErrorAndExits1(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"--addr", addr, "--timeout", "2s", "members"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if want := "ringcachectl: cannot reach ringcache node at " + addr; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want empty", stdout.String())
	}
}

func TestRun_HelpListsCommandsAndExits0(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	for _, c := range []string{"members", "ring", "locate", "get", "set", "del", "stats"} {
		if !strings.Contains(stdout.String(), "  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, stdout.String())
		}
	}
}
