package node

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/internal/hotkeys"
	"github.com/ringcache/ringcache/internal/prewarm"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Pre-warm on restart. While it serves, a node counts the Gets it answers
// as owner of read-through keys (sampled; internal/hotkeys) and writes its
// hottest keys per partition to PrewarmConfig.Path every Interval and when
// it stops (hotkeys.Book). On the next start it loads that list, and once
// it has joined and routes by the cluster's table it loads the listed keys
// it owns and does not hold, reporting ready when that is done or Budget
// has passed (prewarm.Gate).

// Defaults of PrewarmConfig.
const (
	DefaultPrewarmBudget   = 5 * time.Second
	DefaultHotKeysInterval = 30 * time.Second
)

// PrewarmConfig configures the hot-key list and the warm after a restart.
type PrewarmConfig struct {
	// Path is the hot-key list's file (<data-dir>/hotkeys.json); empty
	// keeps no list and warms nothing.
	Path string
	// Budget is how long readiness may wait for the warm after the node
	// has joined; the warm goes on after it. 0 warms nothing (the list is
	// still kept).
	Budget time.Duration
	// Rate bounds the keys warmed per second; default prewarm.DefaultRate.
	Rate float64
	// Interval is how often the list is written; default
	// DefaultHotKeysInterval.
	Interval time.Duration
	// MaxKeys and MaxBytes bound the list; defaults hotkeys.DefaultMaxKeys
	// and hotkeys.DefaultMaxBytes.
	MaxKeys, MaxBytes int
}

// warmState is the node's hot-key list and its one warm.
type warmState struct {
	book *hotkeys.Book // nil without a Path
	gate *prewarm.Gate
}

// openHotKeys loads the saved list and starts counting, seeded with it.
func (n *Node) openHotKeys() {
	c := n.cfg.Prewarm
	var keys []hotkeys.Key
	if c.Path != "" {
		var err error
		n.warm.book, keys, err = hotkeys.OpenBook(hotkeys.BookConfig{
			Path: c.Path, Node: n.cfg.Name, Now: n.now, Logger: n.log,
			Tracker: hotkeys.Config{Partitions: partitionCount(n.cfg.Ring), MaxKeys: c.MaxKeys, MaxBytes: c.MaxBytes},
		})
		if err != nil {
			n.log.Warn("hot-key list unreadable; starting without it", "err", err)
		}
	}
	n.warm.gate = prewarm.NewGate(prewarm.GateConfig{
		Keys: keys, Budget: c.Budget, Rate: c.Rate, Warmer: prewarm.WarmerFunc(func(ctx context.Context, ns, key string) (strategy.WarmSource, bool, error) {
			return n.engine.Warm(ctx, ns, key) // the engine starts after the list is read, the warm after the engine
		}),
		Go: n.wg.Go, Stop: n.stop, Logger: n.log, OnOpen: n.setServing,
	})
}

// startWarm starts the warm's budget once the engine is ready, and the
// warm itself once the table the node routes by includes it.
func (n *Node) startWarm() {
	n.warm.gate.Begin()
	n.runWarm()
}

// runWarm starts the warm when the node's table includes it (the
// coordinator's table at the join may not yet, and then every key would
// look owned by others); called again at every table change.
func (n *Node) runWarm() {
	if r := n.engine.Ring(); n.engine.Ready() && r != nil && r.Has(n.cfg.Name) {
		n.warm.gate.Start(r.Version())
	}
}

// stopWarm ends a warm in progress (a drain begins).
func (n *Node) stopWarm() { n.warm.gate.Cancel() }

// warmErr says why readiness waits for the warm; nil when it does not.
func (n *Node) warmErr() error { return n.warm.gate.Err() }

// PrewarmStats returns the warm's counts since start (zero without one).
func (n *Node) PrewarmStats() prewarm.Stats { return n.warm.gate.Stats() }

// saveHotKeys writes the hot-key list for the last time: the node stops
// serving, and the periodic writes of a long drain would decay it to
// nothing (hotkeys.Book.Close).
func (n *Node) saveHotKeys() error { return n.warm.book.Close() }

// hotKeysLoop writes the list every Interval until the node stops.
func (n *Node) hotKeysLoop() {
	interval := n.cfg.Prewarm.Interval
	if interval <= 0 {
		interval = DefaultHotKeysInterval
	}
	n.warm.book.Run(n.stop, interval)
}
