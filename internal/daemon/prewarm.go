package daemon

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/hotkeys"
	"github.com/ringcache/ringcache/internal/prewarm"
	"github.com/ringcache/ringcache/pkg/node"
)

// PrewarmFlags are the hot-key list's and the warm's flags; each one given
// on the command line wins over the config file's prewarm section.
type PrewarmFlags struct {
	Budget   time.Duration
	Rate     float64
	Interval time.Duration
	MaxKeys  int
	// changed reports whether a flag was given; nil: none was (Flags built
	// in code).
	changed func(name string) bool
}

func (p *PrewarmFlags) register(fl *pflag.FlagSet) {
	fl.DurationVar(&p.Budget, "prewarm-budget", node.DefaultPrewarmBudget, "after a restart, how long readiness may wait while the node loads the hot keys it saved (<data-dir>/hotkeys.json) and owns again; the warm goes on after it; 0 turns the warm off")
	fl.Float64Var(&p.Rate, "prewarm-rate", prewarm.DefaultRate, "keys per second the warm after a restart loads at most")
	fl.DurationVar(&p.Interval, "hot-keys-interval", node.DefaultHotKeysInterval, "how often the node writes its hot-key list to its data dir (and at every stop)")
	fl.IntVar(&p.MaxKeys, "hot-keys-max", hotkeys.DefaultMaxKeys, "keys the hot-key list holds at most")
	p.changed = func(name string) bool { return fl.Changed(name) }
}

// prewarmConfig merges the flags and the file: a flag given wins, then the
// file's key, then the flag's default.
func prewarmConfig(p PrewarmFlags, file config.Prewarm, dataDir string) (node.PrewarmConfig, error) {
	given := func(name string) bool { return p.changed != nil && p.changed(name) }
	c := node.PrewarmConfig{Path: filepath.Join(dataDir, hotkeys.FileName), Budget: p.Budget, Rate: p.Rate, Interval: p.Interval, MaxKeys: p.MaxKeys}
	if !given("prewarm-budget") && file.Budget != nil {
		c.Budget = file.Budget.Std()
	}
	if !given("prewarm-rate") && file.Rate > 0 {
		c.Rate = file.Rate
	}
	if !given("hot-keys-interval") && file.Interval > 0 {
		c.Interval = file.Interval.Std()
	}
	if !given("hot-keys-max") && file.MaxKeys > 0 {
		c.MaxKeys = file.MaxKeys
	}
	switch {
	case c.Budget < 0:
		return c, fmt.Errorf("--prewarm-budget %v must not be negative (0 turns the warm off)", c.Budget)
	case c.Rate < 0 || c.Rate != c.Rate:
		return c, fmt.Errorf("--prewarm-rate %v must be a positive number of keys per second", c.Rate)
	case c.Interval < 0:
		return c, fmt.Errorf("--hot-keys-interval %v must be positive", c.Interval)
	case c.MaxKeys < 0:
		return c, fmt.Errorf("--hot-keys-max %d must not be negative", c.MaxKeys)
	}
	return c, nil
}
