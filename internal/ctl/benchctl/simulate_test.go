package benchctl

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/store"
)

func TestSimulate_ZipfJSONAndPlot(t *testing.T) {
	plotPath := filepath.Join(t.TempDir(), "curve.png")
	out := mustRun(t, "-o", "json", "simulate", "--keys", "2000", "--requests", "20000", "--zipf-s", "1.2",
		"--seed", "5", "--value-size", "50", "--sizes", "800,50,3200,200", "--warmup", "0.25", "--plot", plotPath)
	var v simulateJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	wantWorkload := simWorkloadJSON{Source: "zipf", ZipfS: 1.2, Keys: 2000, Seed: 5, ValueSize: 50}
	if v.Workload != wantWorkload {
		t.Errorf("workload = %+v, want %+v", v.Workload, wantWorkload)
	}
	if v.Requests != 20000 || v.WarmupRequests != 5000 {
		t.Errorf("requests %d, warm-up %d; want 20000 and 5000", v.Requests, v.WarmupRequests)
	}
	if v.DistinctKeys < 100 || v.DistinctKeys > 2000 {
		t.Errorf("distinct keys = %d, want in [100, 2000]", v.DistinctKeys)
	}
	// "key:0".."key:1999" (5 to 8 bytes: an 8-byte allocation) and 50-byte
	// values (64) plus the entry overhead.
	const entry = 8 + 64 + store.EntryOverhead
	if v.MeanEntryBytes != entry {
		t.Errorf("mean entry bytes = %v, want %d", v.MeanEntryBytes, entry)
	}
	if len(v.Results) != 4 {
		t.Fatalf("got %d results, want 4:\n%s", len(v.Results), out)
	}
	for i, want := range []uint64{50, 200, 800, 3200} {
		r := v.Results[i]
		if r.SizeEntries != want || r.Size != strconv.FormatUint(want, 10)+" entries" {
			t.Errorf("result %d is %q (%d entries), want %d entries in ascending order", i, r.Size, r.SizeEntries, want)
		}
		if r.Hits+r.Misses != 15000 {
			t.Errorf("%s: %d requests counted, want 15000", r.Size, r.Hits+r.Misses)
		}
		if r.Bytes > r.MaxBytes || r.MaxBytes != want*entry {
			t.Errorf("%s: %d of %d bytes held, want a bound of %d × %d", r.Size, r.Bytes, r.MaxBytes, want, entry)
		}
		if i > 0 && r.HitRate <= v.Results[i-1].HitRate {
			t.Errorf("hit rate %.3f at %s is not above %.3f at %s", r.HitRate, r.Size, v.Results[i-1].HitRate, v.Results[i-1].Size)
		}
	}
	if k := v.Knee; k != nil && k.Size != v.Results[1].Size && k.Size != v.Results[2].Size {
		t.Errorf("knee at %s, want an inner size", k.Size)
	}
	if v.Plot != plotPath {
		t.Errorf("plot = %q, want %q", v.Plot, plotPath)
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", plotPath, err)
	}
	if got := img.Bounds().Size(); got != (image.Point{X: 768, Y: 480}) {
		t.Errorf("plot is %v pixels, want 768×480", got)
	}
}

func TestSimulate_TraceOnStdinTable(t *testing.T) {
	// Ten keys asked ten times: a cache of ten entries misses only in
	// the first round, which is the warm-up.
	var trace strings.Builder
	for range 10 {
		for k := range 10 {
			trace.WriteString("k" + strconv.Itoa(k) + "\n")
		}
	}
	out, stderr, err := runCLI(t, trace.String(), "simulate", "--trace", "-", "--sizes", "10,2", "--warmup", "0.1")
	if err != nil {
		t.Fatalf("simulate: %v (stderr %q)", err, stderr)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 6 {
		t.Fatalf("output too short:\n%s", out)
	}
	if want := "# trace -: 100 requests, 10 distinct keys, 296 B per entry; hits counted after the first 10 requests"; lines[0] != want {
		t.Errorf("header = %q, want %q", lines[0], want)
	}
	got := rows(strings.Join(lines[1:4], "\n"))
	if want := []string{"SIZE", "MAX BYTES", "ENTRIES", "HIT%", "HITS", "MISSES", "EVICTIONS"}; strings.Join(got[0], "|") != strings.Join(want, "|") {
		t.Errorf("header row = %q, want %q", got[0], want)
	}
	if want := []string{"10 entries", "2960", "10", "100.0", "90", "0", "0"}; strings.Join(got[2], "|") != strings.Join(want, "|") {
		t.Errorf("row for 10 entries = %q, want %q", got[2], want)
	}
	if got[1][0] != "2 entries" || got[1][3] == "100.0" {
		t.Errorf("row for 2 entries = %q, want a hit rate below 100", got[1])
	}
	if !strings.Contains(out, "knee: none") {
		t.Errorf("two sizes have no knee, output:\n%s", out)
	}
}

func TestSimulate_TraceFileWithSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.txt")
	if err := os.WriteFile(path, []byte("a 1000\nb\na\nb 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "-o", "json", "simulate", "--trace", path, "--sizes", "1MiB", "--warmup", "0", "--namespace", "users")
	var v simulateJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if v.Workload.Source != "trace" || v.Workload.Trace != path || v.Workload.Namespace != "users" {
		t.Errorf("workload = %+v", v.Workload)
	}
	// First requests: a with 1000 B, b with the default 100 B, each key
	// 1 byte plus "users\x00", each allocation charged its size class.
	if v.DistinctKeys != 2 || v.MeanEntryBytes != float64(2*(8+store.EntryOverhead)+1024+112)/2 {
		t.Errorf("distinct %d, mean entry %v bytes", v.DistinctKeys, v.MeanEntryBytes)
	}
	if r := v.Results[0]; r.Size != "1.0 MiB" || r.MaxBytes != 1<<20 || r.Hits != 2 || r.Misses != 2 || r.HitRate != 0.5 {
		t.Errorf("result = %+v, want 2 hits and 2 misses in 1 MiB", r)
	}
	if v.Knee != nil {
		t.Errorf("knee = %+v from a single size", v.Knee)
	}
}

func TestSimulate_DefaultSizesAreDoublingsUpToTheKeyBytes(t *testing.T) {
	out := mustRun(t, "-o", "json", "simulate", "--keys", "500", "--requests", "5000", "--steps", "5")
	var v simulateJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(v.Results) != 5 {
		t.Fatalf("got %d sizes, want 5", len(v.Results))
	}
	top := v.Results[4].MaxBytes
	if all := uint64(float64(v.DistinctKeys) * v.MeanEntryBytes); top < all || top >= 2*all || top&(top-1) != 0 {
		t.Errorf("largest size %d bytes, want the power of two above the %d bytes of every key", top, all)
	}
	if v.Results[0].MaxBytes != top/1024 {
		t.Errorf("smallest size %d bytes, want %d / 1024", v.Results[0].MaxBytes, top)
	}
	if last := v.Results[4]; last.Evictions != 0 || last.Entries != v.DistinctKeys {
		t.Errorf("largest size evicted %d and holds %d entries; want every one of the %d keys", last.Evictions, last.Entries, v.DistinctKeys)
	}
}

func TestSimulate_RejectsBadInput(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.txt")
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"--trace", "-"}, "trace has no requests"},
		{"\n\n", []string{"--trace", "-"}, "trace has no requests"},
		{"a 1 2\n", []string{"--trace", "-"}, "line 1"},
		{"", []string{"--trace", missing}, "no such file"},
		{"", []string{"--trace", "-", "--keys", "10"}, "--keys describes a generated trace"},
		{"", []string{"--zipf-s", "1"}, "--zipf-s must be greater than 1"},
		{"", []string{"--zipf-s", "0.5"}, "--zipf-s must be greater than 1"},
		{"", []string{"--requests", "0"}, "--requests must be positive"},
		{"", []string{"--keys", "0"}, "--keys must be positive"},
		{"", []string{"--requests", "10", "--sizes", "0"}, `bad cache size "0"`},
		{"", []string{"--requests", "10", "--sizes", "-5"}, `bad cache size "-5"`},
		{"", []string{"--requests", "10", "--sizes", "10,1MiB"}, "mix entries and bytes"},
		{"", []string{"--requests", "10", "--sizes", "10,10"}, "given twice"},
		{"", []string{"--requests", "10", "--sizes", "10", "--min", "1"}, "--min sets a size range"},
		{"", []string{"--requests", "10", "--min", "1MiB", "--max", "1KiB"}, "above max"},
		{"", []string{"--requests", "10", "--steps", "0"}, "--steps must be at least 1"},
		{"", []string{"--requests", "10", "--warmup", "1"}, "--warmup must be in [0, 1)"},
		{"", []string{"--requests", "10", "--plot", filepath.Join(missing, "x.png")}, "--plot"},
	} {
		_, _, err := runCLI(t, tc.stdin, append([]string{"simulate"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("simulate %v: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}
