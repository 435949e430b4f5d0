// Package prewarm loads a restarted node's hot keys again: the keys of its
// saved hot-key list (internal/hotkeys) that it owns by the cluster's table
// and does not hold, at a bounded rate, through each namespace's one load
// per key, so a client's miss of a key being warmed waits for the same load
// and costs the database nothing more.
//
// A warm runs once, after the node has joined and routes by the cluster's
// table. The node reports ready when the warm is done or its budget has
// passed, whichever comes first (a Gate keeps that state); the warm goes on
// at its rate after that until the list is done or the node stops.
package prewarm

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/ringcache/ringcache/internal/hotkeys"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Defaults of Config.
const (
	DefaultRate    = 1000
	DefaultWorkers = 4
)

// Warmer loads one key on its owner (engine.Engine.Warm): owned is false
// when another node owns it.
type Warmer interface {
	Warm(ctx context.Context, ns, key string) (src strategy.WarmSource, owned bool, err error)
}

// WarmerFunc adapts a function to a Warmer.
type WarmerFunc func(ctx context.Context, ns, key string) (strategy.WarmSource, bool, error)

// Warm calls f.
func (f WarmerFunc) Warm(ctx context.Context, ns, key string) (strategy.WarmSource, bool, error) {
	return f(ctx, ns, key)
}

// Config configures a warm. Keys and Warmer are required.
type Config struct {
	// Keys are the keys to warm, the hottest first.
	Keys   []hotkeys.Key
	Warmer Warmer
	// Rate bounds the keys warmed per second (loaded or not); default
	// DefaultRate. Workers bounds the loads in flight; default
	// DefaultWorkers.
	Rate    float64
	Workers int
	Logger  *slog.Logger
}

// Stats count a warm's keys by outcome.
type Stats struct {
	Listed int // keys in the list
	// FromPending: a write-behind write still waiting for the database
	// answered the load, this node's own or one a previous owner of the
	// key answered over Peer.Lookup (the only peer answer a load asks
	// for today); FromDatabase: the database did.
	FromPending, FromDatabase uint64
	// Held: already in memory (a client's miss loaded it first). NotOwned:
	// another node owns it now. Skipped: its namespace does not read
	// through, or is gone from the configuration. Failed: the load failed.
	Held, NotOwned, Skipped, Failed uint64
	Done                            bool
}

// Loaded is the keys the warm loaded, from peers or the database.
func (s Stats) Loaded() uint64 { return s.FromPending + s.FromDatabase }

// Run is a warm in progress.
type Run struct {
	listed                                       int
	pending, db, held, notOwned, skipped, failed atomic.Uint64
	done                                         chan struct{}
}

// Start begins warming cfg.Keys in the background; it ends when every key
// is tried or ctx ends.
func Start(ctx context.Context, cfg Config) *Run {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Run{listed: len(cfg.Keys), done: make(chan struct{})}
	go r.run(ctx, cfg)
	return r
}

func (r *Run) run(ctx context.Context, cfg Config) {
	defer close(r.done)
	start := time.Now()
	lim := rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Workers)
	keys := make(chan hotkeys.Key)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(func() {
			for k := range keys {
				r.warm(ctx, cfg, k)
			}
		})
	}
	for _, k := range cfg.Keys {
		if lim.Wait(ctx) != nil {
			break
		}
		select {
		case keys <- k:
		case <-ctx.Done():
		}
	}
	close(keys)
	wg.Wait()
	s := r.Stats()
	cfg.Logger.Info("pre-warm done", "listed", s.Listed, "from_pending", s.FromPending, "from_database", s.FromDatabase,
		"held", s.Held, "not_owned", s.NotOwned, "skipped", s.Skipped, "failed", s.Failed,
		"took", time.Since(start).Round(time.Millisecond), "stopped", ctx.Err() != nil)
}

func (r *Run) warm(ctx context.Context, cfg Config, k hotkeys.Key) {
	src, owned, err := cfg.Warmer.Warm(ctx, k.Namespace, k.Key)
	switch {
	case err != nil && ctx.Err() != nil:
		return // stopping: not an outcome of the key
	case err != nil && !owned:
		r.skipped.Add(1)
	case err != nil:
		r.failed.Add(1)
		cfg.Logger.Debug("pre-warm load failed", "namespace", k.Namespace, "err", err)
	case !owned:
		r.notOwned.Add(1)
	case src == strategy.WarmHeld:
		r.held.Add(1)
	case src == strategy.WarmPending:
		r.pending.Add(1)
	case src == strategy.WarmDatabase:
		r.db.Add(1)
	default:
		r.skipped.Add(1)
	}
}

// Done is closed when the warm has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// Stats returns the counts so far.
func (r *Run) Stats() Stats {
	if r == nil {
		return Stats{}
	}
	s := Stats{
		Listed: r.listed, FromPending: r.pending.Load(), FromDatabase: r.db.Load(),
		Held: r.held.Load(), NotOwned: r.notOwned.Load(), Skipped: r.skipped.Load(), Failed: r.failed.Load(),
	}
	select {
	case <-r.done:
		s.Done = true
	default:
	}
	return s
}
