package prewarm

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/hotkeys"
)

// GateConfig configures a Gate. Warmer and Go are required.
type GateConfig struct {
	// Keys are the keys to warm, the hottest first; none opens the gate at
	// once.
	Keys []hotkeys.Key
	// Budget is how long the gate may stay closed after Begin; the warm
	// goes on after it. 0 warms nothing and opens the gate at once.
	Budget time.Duration
	// Rate bounds the keys warmed per second; default DefaultRate.
	Rate   float64
	Warmer Warmer
	// Go runs the gate's goroutines (the node's WaitGroup.Go, so that
	// Close waits for them); they end when Stop is closed.
	Go     func(func())
	Stop   <-chan struct{}
	Logger *slog.Logger
	// OnOpen is called, on a goroutine of Go, when the gate opens because
	// the warm ended or the budget was spent.
	OnOpen func()
}

// Gate holds a restarted node's readiness for its warm: closed from New
// while there are keys to warm, open once the warm is done or Budget has
// passed since Begin, whichever comes first. The warm itself starts at
// Start, once the node routes by a table that includes it (before that
// every key would look owned by others). Its methods may be called from
// any goroutine.
type Gate struct {
	cfg     GateConfig
	open    atomic.Bool
	once    sync.Once   // the budget starts
	running atomic.Bool // the warm started
	ended   chan struct{}
	run     atomic.Pointer[Run]
	cancel  atomic.Pointer[context.CancelFunc]
}

// NewGate returns a gate, open when there is nothing to warm.
func NewGate(cfg GateConfig) *Gate {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnOpen == nil {
		cfg.OnOpen = func() {}
	}
	if cfg.Budget <= 0 {
		cfg.Keys = nil
	}
	g := &Gate{cfg: cfg, ended: make(chan struct{})}
	g.open.Store(len(cfg.Keys) == 0)
	return g
}

// Open reports whether readiness waits for the warm no more.
func (g *Gate) Open() bool { return g.open.Load() }

// Begin starts the budget (once; the node calls it when its engine is
// ready): the gate opens when the warm ends or the budget is spent.
func (g *Gate) Begin() {
	if g.open.Load() {
		return
	}
	g.once.Do(func() {
		g.cfg.Logger.Info("pre-warm waiting for a table that includes this node", "keys", len(g.cfg.Keys), "budget", g.cfg.Budget)
		g.cfg.Go(func() {
			t := time.NewTimer(g.cfg.Budget)
			defer t.Stop()
			select {
			case <-g.ended:
			case <-t.C:
				g.cfg.Logger.Info("pre-warm budget spent; ready while the warm goes on", "loaded", g.Stats().Loaded(), "listed", len(g.cfg.Keys))
			case <-g.cfg.Stop:
			}
			g.open.Store(true)
			g.cfg.OnOpen()
		})
	})
}

// Start starts the warm, once, unless the gate is open already; table is
// the version of the table the node routes by, for the log.
func (g *Gate) Start(table uint64) {
	if g.open.Load() || !g.running.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel.Store(&cancel)
	run := Start(ctx, Config{Keys: g.cfg.Keys, Warmer: g.cfg.Warmer, Rate: g.cfg.Rate, Logger: g.cfg.Logger})
	g.run.Store(run)
	g.cfg.Logger.Info("pre-warm started", "keys", len(g.cfg.Keys), "table", table)
	g.cfg.Go(func() {
		select {
		case <-run.Done():
		case <-g.cfg.Stop:
			cancel()
			<-run.Done()
		}
		close(g.ended)
	})
}

// Cancel ends a warm in progress (a drain begins).
func (g *Gate) Cancel() {
	if c := g.cancel.Load(); c != nil {
		(*c)()
	}
}

// Err says why readiness waits for the warm; nil when it does not.
func (g *Gate) Err() error {
	if g.open.Load() {
		return nil
	}
	s := g.Stats()
	return fmt.Errorf("warming: %d of %d hot keys tried; ready when done or after --prewarm-budget (%v)",
		s.FromPending+s.FromDatabase+s.Held+s.NotOwned+s.Skipped+s.Failed, len(g.cfg.Keys), g.cfg.Budget)
}

// Stats returns the warm's counts so far (zero before Start).
func (g *Gate) Stats() Stats { return g.run.Load().Stats() }
