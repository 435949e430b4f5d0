package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/config"
)

func TestParse_Prewarm(t *testing.T) {
	f, err := config.Parse([]byte("prewarm:\n  budget: 0s\n  rate: 200\n  interval: 10s\n  max_keys: 500\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := f.Prewarm
	if p.Budget == nil || p.Budget.Std() != 0 || p.Rate != 200 || p.Interval.Std() != 10*time.Second || p.MaxKeys != 500 {
		t.Fatalf("prewarm = %+v; want budget 0 (off, told apart from unset), rate 200, interval 10s, max_keys 500", p)
	}
	if f, _ := config.Parse([]byte("namespaces:\n  users: {}\n"), t.TempDir()); f.Prewarm.Budget != nil {
		t.Fatalf("unset budget parsed as %v, want nil (the default)", f.Prewarm.Budget.Std())
	}
	_, err = config.Parse([]byte("prewarm:\n  rate: -1\n"), t.TempDir())
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "prewarm.rate") {
		t.Fatalf("err = %v, want it to name prewarm.rate", err)
	}
}
