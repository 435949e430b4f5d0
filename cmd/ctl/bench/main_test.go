package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun_FailurePrintsRingcachectlErrorAndExits1(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"simulate", "--warmup", "1"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code = %d, want 1", code)
	}
	if want := "ringcachectl: --warmup must be in [0, 1), got 1\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want empty", stdout.String())
	}
}

func TestRun_HelpListsBenchAndSimulate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, stderr %q", code, stderr.String())
	}
	for _, c := range []string{"bench", "simulate"} {
		if !strings.Contains(stdout.String(), "  "+c+" ") {
			t.Errorf("help does not list %q:\n%s", c, stdout.String())
		}
	}
}
