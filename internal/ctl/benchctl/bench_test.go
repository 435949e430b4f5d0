package benchctl

import (
	"strings"
	"testing"
)

// Bad bench input is refused before any load is sent, with a message that
// names what to fix.
func TestBench_BadInputNamesTheProblem(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--read-ratio", "1.5"}, "read ratio must be in [0, 1]"},
		{[]string{"bench", "--concurrency", "0"}, "concurrency must be at least 1"},
		{[]string{"bench", "--key-dist", "normal"}, "uniform or zipf"},
		{[]string{"bench", "--key-dist", "zipf", "--zipf-s", "1"}, "zipf exponent must be greater than 1"},
		{[]string{"bench", "--target", "http://127.0.0.1:6379"}, "redis://host:port"},
		{[]string{"bench", "--target", "redis://"}, "want redis://host:port"},
		{[]string{"bench", "memory"}, "--admin-addrs is required"},
		{[]string{"bench", "memory", "--entries", "0"}, "--entries and --concurrency must be at least 1"},
		{[]string{"bench", "stampede", "--concurrency", "0"}, "--concurrency must be at least 1"},
		{[]string{"bench", "stampede", "--config", "/nonexistent/ringcache.yaml"}, "nonexistent"},
	} {
		_, _, err := runCLI(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ringcachectl %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestSplitList_DropsEmptyItems(t *testing.T) {
	got := splitList(" a:1, ,b:2,")
	if len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("splitList: %q", got)
	}
}
