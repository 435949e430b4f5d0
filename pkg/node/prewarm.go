package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/hotkeys"
	"github.com/ringcache/ringcache/internal/prewarm"
)

// Pre-warm on restart. While it serves, a node counts the Gets it answers
// as owner of read-through keys (sampled; internal/hotkeys) and writes its
// hottest keys per partition to PrewarmConfig.Path every Interval and when
// it stops. On the next start it loads that list, and once it has joined
// and routes by the cluster's table it loads the listed keys it owns and
// does not hold (internal/prewarm), reporting ready when that is done or
// Budget has passed.

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
	tracker *hotkeys.Tracker // nil without a Path
	list    []hotkeys.Key    // loaded at start: what to warm
	once    sync.Once        // the budget starts
	running atomic.Bool      // the warm started
	ended   chan struct{}
	run     atomic.Pointer[prewarm.Run]
	settled atomic.Bool // readiness waits for the warm no more
	cancel  atomic.Pointer[context.CancelFunc]
	mu      sync.Mutex // serializes writes of the list
}

// openHotKeys loads the saved list and starts counting, seeded with it.
func (n *Node) openHotKeys() {
	c := &n.cfg.Prewarm
	w := &n.warm
	w.ended = make(chan struct{})
	if c.Path == "" {
		w.settled.Store(true)
		return
	}
	w.tracker = hotkeys.New(hotkeys.Config{Partitions: partitionCount(n.cfg.Ring), MaxKeys: c.MaxKeys, MaxBytes: c.MaxBytes})
	list, err := hotkeys.Load(c.Path, boundDefault(c.MaxKeys, hotkeys.DefaultMaxKeys), boundDefault(c.MaxBytes, hotkeys.DefaultMaxBytes))
	if err != nil {
		n.log.Warn("hot-key list unreadable; starting without it", "err", err)
	}
	if list.Partitions != partitionCount(n.cfg.Ring) {
		list.Keys = nil // counted under another partition count: the partitions mean other slots
	}
	w.tracker.Seed(list.Keys)
	if c.Budget > 0 {
		w.list = list.Keys
	}
	if len(w.list) == 0 {
		w.settled.Store(true)
	}
}

// boundDefault is v when set, else def: Load needs the defaults applied.
func boundDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// startWarm starts the warm's budget once the engine is ready (at most
// once per start, and only with a list), and the warm itself once the
// table the node routes by includes it: the coordinator's table at the
// join may not yet, and then every key would look owned by others.
func (n *Node) startWarm() {
	w := &n.warm
	if w.settled.Load() {
		return
	}
	w.once.Do(func() {
		n.log.Info("pre-warm waiting for a table that includes this node", "keys", len(w.list), "budget", n.cfg.Prewarm.Budget)
		n.wg.Go(func() {
			t := time.NewTimer(n.cfg.Prewarm.Budget)
			defer t.Stop()
			select {
			case <-w.ended:
			case <-t.C:
				s := w.run.Load().Stats()
				n.log.Info("pre-warm budget spent; ready while the warm goes on", "loaded", s.Loaded(), "listed", len(w.list))
			case <-n.stop:
			}
			w.settled.Store(true)
			n.setServing()
		})
	})
	n.runWarm()
}

// runWarm starts the warm when its budget runs and the node's table
// includes it; called again at every table change.
func (n *Node) runWarm() {
	w := &n.warm
	r := n.engine.Ring()
	if w.settled.Load() || !n.engine.Ready() || r == nil || !r.Has(n.cfg.Name) || !w.running.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel.Store(&cancel)
	run := prewarm.Start(ctx, prewarm.Config{Keys: w.list, Warmer: n.engine, Rate: n.cfg.Prewarm.Rate, Logger: n.log})
	w.run.Store(run)
	n.log.Info("pre-warm started", "keys", len(w.list), "table", r.Version())
	n.wg.Go(func() {
		select {
		case <-run.Done():
		case <-n.stop:
			cancel()
			<-run.Done()
		}
		close(w.ended)
	})
}

// stopWarm ends a warm in progress (a drain begins).
func (n *Node) stopWarm() {
	if c := n.warm.cancel.Load(); c != nil {
		(*c)()
	}
}

// warmErr says why readiness waits for the warm; nil when it does not.
func (n *Node) warmErr() error {
	if n.warm.settled.Load() {
		return nil
	}
	s := n.warm.run.Load().Stats()
	return fmt.Errorf("warming: %d of %d hot keys tried; ready when done or after --prewarm-budget (%v)",
		s.FromPending+s.FromDatabase+s.Held+s.NotOwned+s.Skipped+s.Failed, len(n.warm.list), n.cfg.Prewarm.Budget)
}

// PrewarmStats returns the warm's counts since start (zero without one).
func (n *Node) PrewarmStats() prewarm.Stats { return n.warm.run.Load().Stats() }

// saveHotKeys writes the hot-key list.
func (n *Node) saveHotKeys() error {
	w := &n.warm
	if w.tracker == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := w.tracker.Snapshot()
	err := hotkeys.Save(n.cfg.Prewarm.Path, hotkeys.List{Node: n.cfg.Name, Written: n.now(), Partitions: partitionCount(n.cfg.Ring), Keys: keys})
	if err != nil {
		return err
	}
	n.log.Debug("hot-key list written", "keys", len(keys))
	return nil
}

// hotKeysLoop writes the list every Interval until the node stops.
func (n *Node) hotKeysLoop() {
	interval := n.cfg.Prewarm.Interval
	if interval <= 0 {
		interval = DefaultHotKeysInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if err := n.saveHotKeys(); err != nil {
				n.log.Warn("hot-key list not written", "err", err)
			}
		}
	}
}
