package hotkeys

import (
	"log/slog"
	"sync"
	"time"
)

// BookConfig configures a Book.
type BookConfig struct {
	// Path is the list's file (<data-dir>/hotkeys.json).
	Path string
	// Node is the node's name, written into the list.
	Node string
	// Tracker bounds the counting; its MaxKeys and MaxBytes (defaults
	// applied) also bound the list read back.
	Tracker Config
	// Now stamps the list; default time.Now.
	Now func() time.Time
	// Logger; default discards.
	Logger *slog.Logger
}

// Book keeps a Tracker's list in its file: OpenBook reads the saved list
// and seeds a new Tracker with it, Save writes the Tracker's snapshot, Run
// writes it periodically. Its methods may be called from any goroutine;
// writes are serialized.
type Book struct {
	cfg     BookConfig
	tracker *Tracker
	mu      sync.Mutex // serializes writes of the file
	closed  bool       // Close wrote the last list; guarded by mu
}

// OpenBook returns a Book counting from the list saved at cfg.Path, and
// the keys of that list. The keys are none when the file is missing, when
// it was counted under another partition count (the partitions meant
// other slots), or when it cannot be read: then err says why and the Book
// is usable all the same.
func OpenBook(cfg BookConfig) (*Book, []Key, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Book{cfg: cfg, tracker: New(cfg.Tracker)}
	list, err := Load(cfg.Path, orDefault(cfg.Tracker.MaxKeys, DefaultMaxKeys), orDefault(cfg.Tracker.MaxBytes, DefaultMaxBytes))
	if list.Partitions != cfg.Tracker.Partitions {
		list.Keys = nil
	}
	b.tracker.Seed(list.Keys)
	return b, list.Keys, err
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Tracker returns the Tracker the Book saves; nil for a nil Book.
func (b *Book) Tracker() *Tracker {
	if b == nil {
		return nil
	}
	return b.tracker
}

// Save writes the Tracker's snapshot to the file (see Save). A nil Book
// saves nothing.
func (b *Book) Save() error { return b.save(false) }

// Close writes the list one last time; later Saves, Run's among them,
// write nothing. A node calls it when it stops serving: every Save halves
// the counts (a recency decay), so a node that counts no more reads while
// it drains would otherwise write a list that decays, interval after
// interval, to nothing, and warm nothing when it starts again.
func (b *Book) Close() error { return b.save(true) }

// save writes the Tracker's snapshot unless Close wrote the last one;
// last makes this write the last.
func (b *Book) save(last bool) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = last
	keys := b.tracker.Snapshot()
	if err := Save(b.cfg.Path, List{Node: b.cfg.Node, Written: b.cfg.Now(), Partitions: b.cfg.Tracker.Partitions, Keys: keys}); err != nil {
		return err
	}
	b.cfg.Logger.Debug("hot-key list written", "keys", len(keys))
	return nil
}

// Run saves the list every interval until stop is closed (after Close,
// those saves write nothing), logging a failed write.
func (b *Book) Run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := b.Save(); err != nil {
				b.cfg.Logger.Warn("hot-key list not written", "err", err)
			}
		}
	}
}
