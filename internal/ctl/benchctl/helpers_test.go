package benchctl

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// runCLI runs ringcachectl-bench with args and returns what it wrote.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := NewRootCommand()
	var out, errb bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err = cmd.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

// mustRun runs ringcachectl-bench and fails the test when the command fails.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := runCLI(t, "", args...)
	if err != nil {
		t.Fatalf("ringcachectl-bench %s: %v (stderr %q)", strings.Join(args, " "), err, stderr)
	}
	return out
}

var cellSep = regexp.MustCompile(`\s{2,}`)

// rows splits table output into cells; tabwriter pads columns with at least
// two spaces, and no cell in these tests contains two spaces.
func rows(out string) [][]string {
	var rs [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rs = append(rs, cellSep.Split(strings.TrimSpace(line), -1))
	}
	return rs
}
