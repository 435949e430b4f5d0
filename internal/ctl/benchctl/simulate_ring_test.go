package benchctl

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSimulateRing_JSONRowsMeetTheBoundsFrom3To100(t *testing.T) {
	plotPath := filepath.Join(t.TempDir(), "ring.png")
	out := mustRun(t, "-o", "json", "simulate", "ring", "--nodes", "3-100", "--churn", "0", "--plot", plotPath)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("output is not a JSON list: %v\n%s", err, out)
	}
	if len(rows) != 98 {
		t.Fatalf("%d rows, want one per size from 3 to 100", len(rows))
	}
	for i, r := range rows {
		nodes, _ := r["nodes"].(float64)
		balance, ok1 := r["max_over_mean"].(float64)
		moved, ok2 := r["moved_over_ideal"].(float64)
		if int(nodes) != 3+i || !ok1 || !ok2 {
			t.Fatalf("row %d: %v", i, r)
		}
		if balance > 1.05 || moved > 1.1 || balance < 1 || moved <= 0.9 {
			t.Errorf("%v members: busiest %.3f× the mean, moves %.3f× the ideal", nodes, balance, moved)
		}
		if r["partitions"] != float64(4096) {
			t.Errorf("row %d: %v partitions, want the default 4096", i, r["partitions"])
		}
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("--plot did not write a PNG: %v", err)
	}
}

func TestSimulateRing_TableWithChurn(t *testing.T) {
	out := mustRun(t, "simulate", "ring", "--nodes", "10", "--partitions", "1024", "--churn", "20", "--seed", "3")
	rs := rows(out)
	if len(rs) < 2 || rs[0][0] != "NODES" || rs[0][len(rs[0])-1] != "RANGES AFTER CHURN" {
		t.Fatalf("unexpected table:\n%s", out)
	}
	if got := rs[1]; got[0] != "10" || len(got) != len(rs[0]) || got[2] != "93" { // ⌊1024/11⌋
		t.Fatalf("row %q, want 10 members whose join moves 93 partitions", got)
	}
	if !strings.Contains(out, "0 of 1 sizes outside the bounds") || !strings.Contains(out, "seed 3") {
		t.Fatalf("summary missing:\n%s", out)
	}
}

func TestSimulateRing_RejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--nodes", "0-3"},
		{"--nodes", "9-4"},
		{"--nodes", "many"},
		{"--partitions", "271"},
		{"--partitions", "256", "--nodes", "300"},
		{"--churn", "-1"},
	} {
		_, _, err := runCLI(t, "", append([]string{"simulate", "ring"}, args...)...)
		if err == nil {
			t.Errorf("simulate ring %v: accepted", args)
		}
	}
}

func FuzzParseNodes(f *testing.F) {
	for _, s := range []string{"3-100", "7", " 2 - 9", "-", "5-", "0", "9-4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lo, hi, err := parseNodes(s)
		if err == nil && (lo < 1 || hi < lo) {
			t.Fatalf("parseNodes(%q) = %d, %d", s, lo, hi)
		}
	})
}
