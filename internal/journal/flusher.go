package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Clock versions the records the flusher writes again past a version
// stamped ahead of the wall clock; ringcache's is *hlc.Clock, the node's.
type Clock interface {
	strategy.Versions
	// Ahead reports whether v is past every version a clock that keeps to
	// its wall clock can have stamped by now.
	Ahead(v uint64) bool
}

// FlusherConfig configures a Flusher.
type FlusherConfig struct {
	// Writers are the databases of the write-behind namespaces, by name.
	Writers map[string]strategy.Writer
	// Open returns the value a record holds as the database must get it
	// (a sensitive namespace's values are sealed in the journal); nil
	// writes values as stored.
	Open func(r Record) ([]byte, error)
	// Interval between flushes while the journal holds less than a batch;
	// a full batch is followed by the next at once. Default 1 s.
	Interval time.Duration
	// BatchSize is the most writes sent to a database at once. Default 500.
	BatchSize int
	// MaxAttempts is how often a write the database rejects (strategy.ErrRejected) is
	// tried before it becomes a dead letter. Default 3.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential, jittered wait after
	// a transient failure (the database is down). Defaults 100 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one database batch. Default 30 s.
	Timeout time.Duration
	// Clock is the node's clock; nil means a private one (which moves
	// past a stale version for the record at hand, but not the node's
	// later writes).
	Clock Clock
	// Superseded is told of each record acknowledged without being
	// written because the database held its key at a newer version, once
	// it is no longer pending: a value cached from it is older than the
	// database's. nil tells no one.
	Superseded func(ns, key string, version uint64)
	Logger     *slog.Logger
}

// FlusherStats are a Flusher's counters since start.
type FlusherStats struct {
	Flushed  uint64 // records written to the database and acknowledged
	Batches  uint64 // database batches that succeeded
	Failures uint64 // database batches or writes that failed
	Buried   uint64 // records moved to the dead letters
	// Superseded counts records acknowledged without being written: the
	// database held a newer version of their key, plausibly a later write
	// from another node.
	Superseded uint64
	// Reversioned counts records written again with a new version because
	// the database held their key at a version stamped ahead of the wall
	// clock.
	Reversioned uint64
}

// Flusher writes the journal's pending records to the databases: oldest
// first, in batches, one transaction per namespace and batch. A transient
// failure backs off and retries the same records; a rejected write is
// isolated by retrying the batch one record at a time, and after
// MaxAttempts it moves to the dead letters, so one poison record never
// blocks the others. Records reach the database with their version, so an
// older write never overwrites a newer row.
//
// A record is never acknowledged as written when the database did not
// apply it (a *strategy.StaleVersionError): see settleStale for what
// happens instead.
type Flusher struct {
	j   *Journal
	cfg FlusherConfig
	log *slog.Logger
	mu  sync.Mutex // one flush round at a time (Run and Flush)
	// wake starts Run's next round before its interval (Kick).
	wake chan struct{}

	flushed, batches, failures, buried, superseded, reversioned atomic.Uint64
}

// NewFlusher returns a Flusher of j; start it with Run.
func NewFlusher(j *Journal, cfg FlusherConfig) *Flusher {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = &hlc.Clock{}
	}
	return &Flusher{j: j, cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// Stats returns the counters.
func (f *Flusher) Stats() FlusherStats {
	return FlusherStats{Flushed: f.flushed.Load(), Batches: f.batches.Load(), Failures: f.failures.Load(), Buried: f.buried.Load(),
		Superseded: f.superseded.Load(), Reversioned: f.reversioned.Load()}
}

// Run flushes until ctx ends.
func (f *Flusher) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := f.cfg.Interval
		n, err := f.round(ctx)
		switch {
		case err != nil:
			backoff = min(max(2*backoff, f.cfg.MinBackoff), f.cfg.MaxBackoff)
			wait = backoff/2 + rand.N(backoff/2+1) // jitter: nodes do not retry in step
			f.log.Warn("write-behind flush failed; retrying", "in", wait, "err", err)
		case n >= f.cfg.BatchSize:
			backoff, wait = 0, 0 // a backlog: keep going
		default:
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-f.wake:
			t.Stop()
		}
	}
}

// Kick makes Run start its next round now rather than after its interval:
// after a merge, writes pending here may have been superseded by writes
// the returning members flushed, and a read answers from a pending write
// until it is flushed.
func (f *Flusher) Kick() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Flush writes every pending record now, retrying transient failures until
// ctx ends. It returns nil once the journal holds no pending record that can
// be written (dead letters excepted).
func (f *Flusher) Flush(ctx context.Context) error {
	backoff := f.cfg.MinBackoff
	for {
		n, err := f.round(ctx)
		if err == nil && n == 0 {
			return nil
		}
		if err != nil {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("flush stopped with writes still pending: %w (last error: %w)", ctx.Err(), err)
			case <-t.C:
			}
			backoff = min(2*backoff, f.cfg.MaxBackoff)
		} else if ctx.Err() != nil {
			return fmt.Errorf("flush stopped with writes still pending: %w", ctx.Err())
		}
	}
}

// round flushes one batch of the oldest pending records and returns how
// many it took from the journal.
func (f *Flusher) round(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	recs, err := f.j.Oldest(f.cfg.BatchSize)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	// One transaction per namespace, in journal order within each.
	var order []string
	groups := map[string][]Record{}
	for _, r := range recs {
		if _, ok := groups[r.Namespace]; !ok {
			order = append(order, r.Namespace)
		}
		groups[r.Namespace] = append(groups[r.Namespace], r)
	}
	// A namespace whose database is down must not hold back the others:
	// every group is tried, and the errors are reported together.
	var errs []error
	for _, ns := range order {
		if err := f.flushGroup(ctx, ns, groups[ns]); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	return len(recs), errors.Join(errs...)
}

func (f *Flusher) flushGroup(ctx context.Context, ns string, recs []Record) error {
	w, ok := f.cfg.Writers[ns]
	if !ok {
		// The namespace is no longer write-behind (its config changed): the
		// records cannot be written; keep them visible as dead letters.
		for _, r := range recs {
			if err := f.bury(r, fmt.Errorf("namespace %q has no write-behind database in this node's config", ns)); err != nil {
				return err
			}
		}
		return nil
	}
	recs, err := f.openAll(recs)
	if err != nil {
		return err
	}
	err = f.write(ctx, w, recs)
	if err == nil {
		return f.ack(recs)
	}
	var stale *strategy.StaleVersionError
	if errors.As(err, &stale) {
		return f.settleStale(ctx, w, recs, stale)
	}
	f.failures.Add(1)
	if !errors.Is(err, strategy.ErrRejected) {
		return err // the database is down or slow: back off, retry the batch
	}
	// Some record is poison: find it by writing one record at a time.
	for _, r := range recs {
		err := f.write(ctx, w, []Record{r})
		var stale *strategy.StaleVersionError
		switch {
		case err == nil:
			if err := f.ack([]Record{r}); err != nil {
				return err
			}
		case errors.As(err, &stale):
			if err := f.settleStale(ctx, w, []Record{r}, stale); err != nil {
				return err
			}
		case !errors.Is(err, strategy.ErrRejected):
			f.failures.Add(1)
			return err
		case int(r.Attempts)+1 >= f.cfg.MaxAttempts:
			f.failures.Add(1)
			// No key in the log: keys may be personal data.
			// `ringcachectl journal dead` shows the key to operators.
			f.log.Error("write-behind record rejected by the database; moved to the dead letters",
				"namespace", r.Namespace, "attempts", r.Attempts+1, "err", err)
			if err := f.bury(r, err); err != nil {
				return err
			}
		default:
			f.failures.Add(1)
			if err := f.j.Retry(r, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleStale finishes a batch the database applied except the records
// stale lists, which changed nothing because it holds their keys at newer
// versions. A pending record is the latest write of its key this node
// acknowledged (the journal coalesces per key), so:
//
//   - A stored version within MaxOffset of the wall clock may be a write
//     another node acknowledged after this one (it took the partition
//     over): the record is superseded, and acknowledged as such.
//   - A stored version further ahead cannot have been stamped by a clock
//     that keeps to its wall clock, so it is no evidence of a later write:
//     it came from a clock that ran ahead (before a restart, or on a node
//     whose clock stepped). The record, acknowledged later in real time,
//     must win: the clock moves past the stored version and the record is
//     written again with a new version. Should that lose again, it is
//     retried like a rejected write, and buried after MaxAttempts.
//   - A template that cannot say its stored version gives no ground to
//     overwrite it: superseded.
func (f *Flusher) settleStale(ctx context.Context, w strategy.Writer, recs []Record, stale *strategy.StaleVersionError) error {
	lost := make(map[int]uint64, len(stale.Writes))
	for _, s := range stale.Writes {
		lost[s.Index] = s.Stored
	}
	done := make([]Record, 0, len(recs))
	var again, superseded []Record
	for i, r := range recs {
		stored, ok := lost[i]
		switch {
		case !ok:
			done = append(done, r)
		case stored == 0 || !f.cfg.Clock.Ahead(stored):
			f.superseded.Add(1)
			done = append(done, r)
			superseded = append(superseded, r)
		default:
			f.cfg.Clock.Seed(stored)
			again = append(again, r)
		}
	}
	if err := f.ack(done); err != nil {
		return err
	}
	if f.cfg.Superseded != nil {
		for _, r := range superseded {
			f.cfg.Superseded(r.Namespace, r.Key, r.Version)
		}
	}
	for _, r := range again {
		if err := f.reversion(ctx, w, r); err != nil {
			return err
		}
	}
	return nil
}

// reversion writes r again with a new version, past the one that made it
// stale. The journal keeps r's version: Ack removes r only if no newer
// write replaced it meanwhile, and a crash before the Ack replays r, which
// then meets this write and is settled again.
func (f *Flusher) reversion(ctx context.Context, w strategy.Writer, r Record) error {
	nw := r.toDB()
	nw.Version = f.cfg.Clock.Now()
	wctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	err := w.Write(wctx, []strategy.Write{nw})
	cancel()
	switch {
	case err == nil:
		f.reversioned.Add(1)
		f.log.Warn("a write-behind record lost to a version stamped ahead of the wall clock; written again with a newer version",
			"namespace", r.Namespace)
		return f.ack([]Record{r})
	case errors.Is(err, strategy.ErrStaleVersion), errors.Is(err, strategy.ErrRejected):
		f.failures.Add(1)
		if int(r.Attempts)+1 >= f.cfg.MaxAttempts {
			f.log.Error("write-behind record could not be written past newer stored versions; moved to the dead letters",
				"namespace", r.Namespace, "attempts", r.Attempts+1, "err", err)
			return f.bury(r, err)
		}
		return f.j.Retry(r, err)
	}
	f.failures.Add(1)
	return err
}

func (f *Flusher) write(ctx context.Context, w strategy.Writer, recs []Record) error {
	writes := make([]strategy.Write, len(recs))
	for i, r := range recs {
		writes[i] = r.toDB()
	}
	wctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	return w.Write(wctx, writes)
}

// openAll gives each record the value the database must get (Open). A
// record that cannot be opened — sealed under a key this node no longer
// holds, or altered on disk — moves to the dead letters with the reason,
// where `ringcachectl journal retry` requeues it once the key is back; the
// rest of the batch goes on.
func (f *Flusher) openAll(recs []Record) ([]Record, error) {
	if f.cfg.Open == nil {
		return recs, nil
	}
	out := recs[:0:0]
	for _, r := range recs {
		if r.Delete {
			out = append(out, r)
			continue
		}
		v, err := f.cfg.Open(r)
		if err != nil {
			f.failures.Add(1)
			f.log.Error("write-behind record cannot be opened; moved to the dead letters",
				"namespace", r.Namespace, "err", err)
			if err := f.bury(r, err); err != nil {
				return nil, err
			}
			continue
		}
		r.opened = v
		out = append(out, r)
	}
	return out, nil
}

func (f *Flusher) ack(recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := f.j.Ack(recs); err != nil {
		return fmt.Errorf("ack %d flushed records in the journal: %w", len(recs), err)
	}
	f.flushed.Add(uint64(len(recs)))
	f.batches.Add(1)
	return nil
}

func (f *Flusher) bury(r Record, cause error) error {
	if err := f.j.Bury(r, cause); err != nil {
		return fmt.Errorf("move a record of namespace %q to the dead letters: %w", r.Namespace, err)
	}
	f.buried.Add(1)
	return nil
}
