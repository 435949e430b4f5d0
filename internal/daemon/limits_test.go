package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ringcache/ringcache/pkg/node"
)

// parseLimits parses args as ringcached does and returns the node
// configuration they make.
func parseLimits(t *testing.T, args ...string) (node.Config, error) {
	t.Helper()
	var l LimitFlags
	fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
	l.register(fl)
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}
	var cfg node.Config
	err := l.apply(&cfg)
	return cfg, err
}

func TestLimitFlags_ReachTheNodeConfig(t *testing.T) {
	cfg, err := parseLimits(t, "--max-connections=3", "--max-calls=10", "--max-streams=-1", "--idle-timeout=1m",
		"--max-connection-age=1h", "--stream-send-timeout=2s", "--max-watchers=7", "--watch-backlog=1MiB")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnections != 3 || cfg.MaxCalls != 10 || cfg.MaxStreams != -1 || cfg.IdleTimeout != time.Minute ||
		cfg.MaxConnectionAge != time.Hour || cfg.StreamSendTimeout != 2*time.Second || cfg.MaxWatchers != 7 ||
		cfg.WatchBacklogBytes != 1<<20 {
		t.Fatalf("node config from the flags = %+v", cfg)
	}
}

func TestLimitFlags_DefaultsAreTheNodes(t *testing.T) {
	cfg, err := parseLimits(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnections != 0 || cfg.MaxCalls != node.DefaultMaxCalls || cfg.MaxStreams != node.DefaultMaxStreams ||
		cfg.IdleTimeout != node.DefaultIdleTimeout || cfg.StreamSendTimeout != node.DefaultStreamSendTimeout ||
		cfg.MaxWatchers != node.DefaultMaxWatchers || cfg.WatchBacklogBytes != node.DefaultWatchBacklogBytes {
		t.Fatalf("node config from no flags = %+v, want node's defaults", cfg)
	}
}

func TestLimitFlags_BadValuesNameTheFlag(t *testing.T) {
	for _, c := range []struct{ flag, arg string }{
		{"--watch-backlog", "--watch-backlog=lots"},
		{"--max-connection-age", "--max-connection-age=-1s"},
		{"--max-batch-keys", "--max-batch-keys=-5"},
		{"--max-batch-keys", "--max-batch-keys=70000"}, // more than a peer's forward may carry
	} {
		if _, err := parseLimits(t, c.arg); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s: error %v, want one naming %s", c.arg, err, c.flag)
		}
	}
}
