// Package hotkeys keeps a bounded list of the keys a node serves most often
// as their owner, per partition, so that a restarted node can load them
// again before clients ask (see internal/prewarm). It is ours to write: no
// well-kept top-k library fits a per-partition bound with lock-free
// sampling on the read path.
//
// Counting is cheap by construction:
//   - Tracker.Touch counts one read in Config.SampleEvery, chosen at random
//     (math/rand/v2's per-thread generator), so the read path pays a random
//     number for the others.
//   - Each partition keeps at most 4 × Config.PerPartition candidates under
//     a mutex of its own, counted with the Space-Saving algorithm (Metwally,
//     Agrawal, El Abbadi 2005): a key not yet counted replaces the least
//     counted candidate and inherits its count plus one, so any key read
//     more often than a 1/(4·PerPartition) share of its partition's sampled
//     reads is among the candidates. The inherited part is remembered as
//     the candidate's error, and candidates are ranked by count minus
//     error (reads surely seen), so a cold key that just took a slot does
//     not outrank the keys that hold theirs.
//   - Snapshot takes the PerPartition best-ranked candidates of every
//     partition, the best first, cut at Config.MaxKeys keys and
//     Config.MaxBytes bytes, and halves every count, so hotness is that of
//     the last few snapshots.
//
// Save writes a snapshot crash-safely (a temporary file, fsync, rename,
// fsync of the directory): a crash leaves the previous list or the new one,
// never a torn file. Load reads it back. A Book ties the two to a node's
// file: it reads the list at start, seeds a Tracker with it, and writes the
// Tracker's snapshot when asked and periodically.
package hotkeys

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Defaults of Config.
const (
	DefaultPerPartition = 8
	DefaultMaxKeys      = 10000
	DefaultMaxBytes     = 1 << 20
	DefaultSampleEvery  = 8
)

// Config bounds a Tracker. Zero fields take their defaults.
type Config struct {
	// Partitions is the ring's partition count; Touch ignores partitions
	// outside [0, Partitions).
	Partitions int
	// PerPartition is how many keys of one partition a snapshot keeps.
	PerPartition int
	// MaxKeys and MaxBytes bound a snapshot: keys, and bytes of namespaces
	// and keys.
	MaxKeys, MaxBytes int
	// SampleEvery: one read in SampleEvery is counted; 1 counts every read.
	SampleEvery uint32
}

func (c Config) withDefaults() Config {
	if c.PerPartition <= 0 {
		c.PerPartition = DefaultPerPartition
	}
	if c.MaxKeys <= 0 {
		c.MaxKeys = DefaultMaxKeys
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	return c
}

// Key is one hot key.
type Key struct {
	Namespace string `json:"ns"`
	Key       string `json:"key"`
	// Partition is the key's partition when it was counted.
	Partition int `json:"p"`
	// Count is its decayed sampled count: only the order means something.
	Count uint32 `json:"n"`
}

// Tracker counts reads of keys per partition. It is safe for concurrent
// use; its zero value is not usable (New).
type Tracker struct {
	cfg     Config
	parts   []partition
	sampled atomic.Uint64
}

type partition struct {
	mu    sync.Mutex
	cands []candidate // at most candidatesPer × PerPartition
}

// candidatesPer is how many candidates a partition counts per key it keeps.
const candidatesPer = 4

type candidate struct {
	ns, key    string
	count, err uint32 // err ≤ count: inherited from the key it replaced
}

// sure is the candidate's rank: the reads surely counted for its key.
func (c candidate) sure() uint32 { return c.count - c.err }

// New returns a Tracker for cfg.
func New(cfg Config) *Tracker {
	cfg = cfg.withDefaults()
	return &Tracker{cfg: cfg, parts: make([]partition, max(cfg.Partitions, 0))}
}

// Touch records a read of key in namespace ns, of partition p, by its
// owner: counted with probability 1/SampleEvery. The strings are copied
// when kept.
func (t *Tracker) Touch(ns, key string, p int) {
	if t.Sample() {
		t.Count(ns, key, p)
	}
}

// Sample reports whether to count this read: true with probability
// 1/SampleEvery. A caller whose partition costs work to compute asks first,
// then calls Count.
func (t *Tracker) Sample() bool {
	return t != nil && (t.cfg.SampleEvery <= 1 || rand.Uint32N(t.cfg.SampleEvery) == 0)
}

// Count counts one sampled read (see Sample).
func (t *Tracker) Count(ns, key string, p int) {
	if p < 0 || p >= len(t.parts) {
		return
	}
	t.sampled.Add(1)
	part := &t.parts[p]
	part.mu.Lock()
	defer part.mu.Unlock()
	least := -1
	for i := range part.cands {
		c := &part.cands[i]
		if c.key == key && c.ns == ns {
			if c.count < ^uint32(0) {
				c.count++
			}
			return
		}
		if least < 0 || c.count < part.cands[least].count {
			least = i
		}
	}
	if len(part.cands) < candidatesPer*t.cfg.PerPartition {
		part.cands = append(part.cands, candidate{ns: strings.Clone(ns), key: strings.Clone(key), count: 1})
		return
	}
	// Space-Saving: the newcomer takes the least counted slot and its count.
	c := &part.cands[least]
	c.ns, c.key, c.err = strings.Clone(ns), strings.Clone(key), c.count
	c.count++
}

// Seed counts keys as if read Count times each, as candidates of their
// partitions: a restarted node seeds its tracker with the list it saved, so
// the next list keeps the keys that were hot before the restart until
// hotter ones displace them.
func (t *Tracker) Seed(keys []Key) {
	for _, k := range keys {
		if k.Partition < 0 || k.Partition >= len(t.parts) || k.Count == 0 {
			continue
		}
		part := &t.parts[k.Partition]
		part.mu.Lock()
		if len(part.cands) < candidatesPer*t.cfg.PerPartition {
			part.cands = append(part.cands, candidate{ns: k.Namespace, key: k.Key, count: k.Count})
		}
		part.mu.Unlock()
	}
}

// Sampled returns how many reads were counted since New.
func (t *Tracker) Sampled() uint64 { return t.sampled.Load() }

// Snapshot returns the hottest keys, the best-ranked first, within the
// bounds, and halves every count and error (dropping candidates whose
// count reaches zero).
func (t *Tracker) Snapshot() []Key {
	var out []Key
	for p := range t.parts {
		part := &t.parts[p]
		part.mu.Lock()
		slices.SortFunc(part.cands, func(a, b candidate) int { return cmp.Compare(b.sure(), a.sure()) })
		for i, c := range part.cands {
			if i < t.cfg.PerPartition && c.sure() > 0 {
				out = append(out, Key{Namespace: c.ns, Key: c.key, Partition: p, Count: c.sure()})
			}
		}
		kept := part.cands[:0]
		for _, c := range part.cands {
			if c.count, c.err = c.count/2, c.err/2; c.count > 0 {
				kept = append(kept, c)
			}
		}
		clear(part.cands[len(kept):])
		part.cands = kept
		part.mu.Unlock()
	}
	return Bound(out, t.cfg.MaxKeys, t.cfg.MaxBytes)
}

// Bound sorts keys by count, the highest first (partition, then key,
// between equals), and cuts the list at maxKeys keys and maxBytes bytes of
// namespaces and keys.
func Bound(keys []Key, maxKeys, maxBytes int) []Key {
	slices.SortStableFunc(keys, func(a, b Key) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Partition, b.Partition); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Key, b.Key))
	})
	size := 0
	for i, k := range keys {
		size += len(k.Namespace) + len(k.Key)
		if i >= maxKeys || size > maxBytes {
			return keys[:i]
		}
	}
	return keys
}
