package hlc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultMarkWindow is how far ahead of the clock a Mark persists its
// ceiling by default.
const DefaultMarkWindow = time.Second

// ErrMarkCorrupt is wrapped by OpenMark when the file holds no readable
// ceiling.
var ErrMarkCorrupt = errors.New("clock mark corrupt")

// MarkOptions configures a Mark. Zero fields take their defaults.
type MarkOptions struct {
	// Window is how far ahead of the clock the ceiling is set each time it
	// is written; the file is rewritten (and fsync'd) about twice per
	// Window while the clock is in use. Default DefaultMarkWindow.
	Window time.Duration
	// Logger receives write failures; nil discards them.
	Logger *slog.Logger
}

// Mark persists a clock's high-water mark: a ceiling, written to a small
// file and fsync'd before the clock hands out a version above it, so a
// restarted node never stamps a version below one it stamped before, even
// when its wall clock stepped back meanwhile (OpenMark moves the clock past
// the stored ceiling).
//
// The ceiling is the clock's value plus Window. Run rewrites it in the
// background once the clock is within half a Window of it; a Now that
// would pass it (Run fell behind, or Seed moved the clock far ahead)
// writes it itself before returning. The file has two slots written in
// turn, each with a CRC, so a torn write leaves the previous ceiling
// readable.
type Mark struct {
	c      *Clock
	f      *os.File
	path   string
	window uint64 // in versions
	log    *slog.Logger
	kick   chan struct{}

	mu     sync.Mutex // serialises writes of the file; taken under c.mu
	stored uint64     // the highest ceiling written
	slot   int64
	closed bool
	err    error // the last write failure, nil once a write succeeds
}

const (
	markSlot  = 16 // 8 bytes ceiling, 4 bytes CRC-32C, 4 bytes zero
	markSlots = 2
)

// OpenMark opens (creating it, mode 0600) the mark file at path, moves c
// past the ceiling it holds and makes c keep a ceiling there from now on.
// When the stored ceiling is less than a Window ahead of the wall clock (a
// quick restart) it first waits for the wall clock to reach it, so a
// restarted node does not run ahead of its peers; further ahead (the wall
// clock stepped back) it seeds c without waiting. One Mark per Clock.
func OpenMark(c *Clock, path string, opts MarkOptions) (*Mark, error) {
	if opts.Window <= 0 {
		opts.Window = DefaultMarkWindow
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("clock mark: create directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("clock mark: %w", err)
	}
	m := &Mark{c: c, f: f, path: path, window: uint64(opts.Window.Milliseconds()) << logicalBits, log: log, kick: make(chan struct{}, 1)}
	stored, slot, err := m.read()
	if err != nil {
		f.Close()
		return nil, err
	}
	m.stored, m.slot = stored, slot
	if wall := c.wall(); stored > wall && Time(stored).Sub(Time(wall)) <= opts.Window {
		time.Sleep(Time(stored).Sub(Time(wall)))
	}
	c.Seed(stored)
	c.mu.Lock()
	c.mark, c.ceiling = m, stored
	c.mu.Unlock()
	return m, nil
}

// read returns the highest ceiling in the file's valid slots and the slot
// to write next; 0 for an empty file.
func (m *Mark) read() (uint64, int64, error) {
	b := make([]byte, markSlot*markSlots)
	n, err := m.f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, fmt.Errorf("clock mark: read %s: %w", m.path, err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	var best uint64
	next, valid := int64(0), false
	for i := range int64(markSlots) {
		s := b[i*markSlot : (i+1)*markSlot]
		v := binary.BigEndian.Uint64(s)
		if int64(n) < (i+1)*markSlot || crc32.Checksum(s[:8], castagnoli) != binary.BigEndian.Uint32(s[8:12]) {
			continue
		}
		if !valid || v > best {
			best, next, valid = v, (i+1)%markSlots, true
		}
	}
	if !valid {
		return 0, 0, fmt.Errorf("%w: %s holds no readable ceiling; if this node's wall clock is right, remove the file and restart", ErrMarkCorrupt, m.path)
	}
	return best, next, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cover returns a persisted ceiling at or above v, given the one the clock
// knows; c.mu is held. Near the ceiling it asks Run for a new one; past it
// it writes one itself.
func (m *Mark) cover(v, ceiling uint64) uint64 {
	switch {
	case v > ceiling:
		return m.persist(v, v)
	case ceiling-v < m.window/2:
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return ceiling
}

// persist writes a ceiling of base (or the wall clock, if later) plus the
// window, unless the stored one is at least need, and returns the stored
// one. A failed write is logged and a Window past need returned, so the
// clock goes on without writing on every Now; the next renewal tries
// again.
func (m *Mark) persist(need, base uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stored >= need || m.closed {
		return max(m.stored, need)
	}
	next := sat(max(base, m.c.wall()), m.window)
	s := make([]byte, markSlot)
	binary.BigEndian.PutUint64(s, next)
	binary.BigEndian.PutUint32(s[8:], crc32.Checksum(s[:8], castagnoli))
	_, err := m.f.WriteAt(s, m.slot*markSlot)
	if err == nil {
		err = m.f.Sync()
	}
	if err != nil {
		if m.err == nil {
			m.log.Error("cannot persist the clock's high-water mark; after a restart with a wall clock that stepped back, versions may repeat", "path", m.path, "err", err)
		}
		m.err = err
		return sat(need, m.window)
	}
	m.err = nil
	m.stored, m.slot = next, (m.slot+1)%markSlots
	return next
}

// Run renews the ceiling ahead of the clock until stop is closed.
func (m *Mark) Run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-m.kick:
		}
		c := m.c
		c.mu.Lock()
		v := max(c.last, c.wall())
		c.mu.Unlock()
		got := m.persist(sat(v, m.window/2), v)
		c.mu.Lock()
		c.ceiling = max(c.ceiling, got)
		c.mu.Unlock()
	}
}

// Ceiling returns the highest ceiling persisted.
func (m *Mark) Ceiling() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stored
}

// Err returns the last write failure, or nil once a write succeeded.
func (m *Mark) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Close detaches the mark from its clock and closes the file. Call it
// after Run has returned.
func (m *Mark) Close() error {
	m.c.mu.Lock()
	if m.c.mark == m {
		m.c.mark = nil
	}
	m.c.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.f.Close()
}
