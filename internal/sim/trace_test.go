package sim

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/store"
)

func TestReadTrace_KeysSizesAndDefaults(t *testing.T) {
	in := "alpha\nbeta 1000\n\n  alpha 7 \nbeta\tTAB\n"
	_, err := ReadTrace(strings.NewReader(in), TraceOptions{ValueSize: 10})
	if !errors.Is(err, ErrBadTrace) || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("err = %v, want ErrBadTrace on line 5", err)
	}

	// A line without a size reuses the key's last one.
	in = "alpha\nbeta 1000\n\n  alpha 7 \ngamma\nbeta\nalpha\n"
	tr, err := ReadTrace(strings.NewReader(in), TraceOptions{ValueSize: 10, PrefixBytes: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tr.keys, []uint32{0, 1, 0, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("keys = %v, want %v", got, want)
	}
	alpha10, alpha7, beta, gamma := store.Charge(4+5, 10), store.Charge(4+5, 7), store.Charge(4+4, 1000), store.Charge(4+5, 10)
	if got, want := tr.weights, []uint32{alpha10, beta, alpha7, gamma, beta, alpha7}; !slices.Equal(got, want) {
		t.Errorf("weights = %v, want %v", got, want)
	}
	if tr.Len() != 6 || tr.Distinct() != 3 {
		t.Errorf("len %d distinct %d, want 6 and 3", tr.Len(), tr.Distinct())
	}
	// Mean over each key's first request: alpha 10 B, beta 1000 B, gamma 10 B.
	if got, want := tr.MeanEntryBytes(), float64(2*alpha10+beta)/3; got != want {
		t.Errorf("mean entry bytes = %v, want %v", got, want)
	}
}

func TestReadTrace_RejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want error
		msg  string
	}{
		"empty":        {"", ErrEmptyTrace, "no requests"},
		"blank lines":  {"\n \n\t\n", ErrEmptyTrace, "no requests"},
		"three fields": {"a 1\nb 2 3\n", ErrBadTrace, "line 2"},
		"bad size":     {"a -1\n", ErrBadTrace, `size "-1"`},
		"huge value":   {"a 4294967295\n", ErrBadTrace, "too large"},
		"long line":    {strings.Repeat("k", maxLine+1), ErrBadTrace, "longer than"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadTrace(strings.NewReader(tc.in), TraceOptions{ValueSize: 1})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

func TestZipf_IsRepeatableAndSkewed(t *testing.T) {
	c := ZipfConfig{S: 1.2, Keys: 1000, Requests: 20000, ValueSize: 50, Seed: 7}
	a, err := Zipf(c)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Zipf(c)
	if !slices.Equal(a.keys, b.keys) {
		t.Error("two traces of one seed differ")
	}
	counts := make([]int, c.Keys)
	for _, k := range a.keys {
		counts[k]++
	}
	if counts[0] <= counts[1] || counts[1] <= counts[100] {
		t.Errorf("key 0 asked %d times, key 1 %d, key 100 %d: want decreasing popularity", counts[0], counts[1], counts[100])
	}
	if a.Distinct() < 100 || a.Distinct() > int(c.Keys) {
		t.Errorf("distinct keys = %d, want between 100 and %d", a.Distinct(), c.Keys)
	}
	// "key:0" is 5 bytes, "key:999" 7.
	for i, k := range a.keys {
		want := store.Charge(len("key:")+digits(uint64(k)), 50)
		if a.weights[i] != want {
			t.Fatalf("request %d (key %d) weighs %d, want %d", i, k, a.weights[i], want)
		}
	}
}

func TestZipfConfig_Validate(t *testing.T) {
	ok := ZipfConfig{S: 1.1, Keys: 10, Requests: 10}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, mut := range map[string]func(*ZipfConfig){
		"s = 1":       func(c *ZipfConfig) { c.S = 1 },
		"s < 1":       func(c *ZipfConfig) { c.S = 0.5 },
		"s NaN":       func(c *ZipfConfig) { c.S = nan() },
		"no keys":     func(c *ZipfConfig) { c.Keys = 0 },
		"no requests": func(c *ZipfConfig) { c.Requests = 0 },
		"huge value":  func(c *ZipfConfig) { c.ValueSize = 1 << 40 },
	} {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
	}
}
