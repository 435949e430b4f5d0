// Package filewatch keeps a value loaded from files and reloads it when the
// files change, so that credentials (TLS certificates, token tables) rotate
// without a restart and without a goroutine to stop.
//
// The guarantee: Get always returns a value that loaded successfully. At most
// once per interval, the first caller of Get after the interval stats the
// files (modification time, size and identity, so an atomic rename, an
// in-place rewrite and a Kubernetes Secret's symlink swap are all seen); when
// any differs from the last successful load, it loads them again. A load that
// fails — a half-written file, a certificate and key that do not match yet —
// keeps the previous value and is tried again at the next interval, and its
// error is reported once per distinct set of files, not once per interval.
// Other callers never wait for a load: they get the current value.
//
// A change that keeps a file's size, modification time and inode (an
// in-place rewrite of identical length within the file system's timestamp
// granularity, or `cp -p`) is not seen; replace files by writing a new one
// and renaming it over the old, as Kubernetes and cert-manager do.
package filewatch

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often Get looks at the files when Options.Interval
// is zero.
const DefaultInterval = time.Second

// Options tunes a Value. The zero value is usable.
type Options struct {
	// Interval is the least time between two looks at the files; zero means
	// DefaultInterval, negative means every Get (tests).
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one Info line per reload and one Warn line per failed
	// load of a distinct set of files; nil discards.
	Logger *slog.Logger
	// Name names the value in log lines and errors, e.g. "tls certificate".
	Name string
}

// Stats counts what a Value did.
type Stats struct {
	Reloads  uint64 // successful loads after the first
	Failures uint64 // failed loads after the first (the previous value stayed)
	// LastError is the error of the latest load, nil when it succeeded.
	LastError error
}

// Value holds the latest T that load produced from paths. It is safe for
// concurrent use.
type Value[T any] struct {
	paths    []string
	load     func() (T, error)
	interval time.Duration
	now      func() time.Time
	log      *slog.Logger
	name     string

	cur  atomic.Pointer[T]
	next atomic.Int64 // unix nanoseconds of the next look at the files

	mu       sync.Mutex // held by the one caller that looks at the files
	loaded   []os.FileInfo
	failed   []os.FileInfo // files of the last failed load, to report it once
	failMsg  string
	reloads  atomic.Uint64
	failures atomic.Uint64
	lastErr  atomic.Pointer[error]
}

// New loads the value once and returns it; an error then is returned as is
// (the caller decides whether to start without the material). load reads
// paths itself; paths lists every file it reads, so that a change to any of
// them triggers a reload.
func New[T any](paths []string, load func() (T, error), o Options) (*Value[T], error) {
	if len(paths) == 0 {
		return nil, errors.New("filewatch: no files to watch")
	}
	v := &Value[T]{
		paths:    append([]string(nil), paths...),
		load:     load,
		interval: o.Interval,
		now:      o.Now,
		log:      o.Logger,
		name:     o.Name,
	}
	if v.interval == 0 {
		v.interval = DefaultInterval
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.name == "" {
		v.name = "file"
	}
	stamps, _ := stat(v.paths)
	t, err := load()
	if err != nil {
		return nil, err
	}
	v.cur.Store(&t)
	v.loaded = stamps
	v.next.Store(v.now().Add(v.interval).UnixNano())
	return v, nil
}

// Get returns the current value, first reloading it if the interval has
// passed and the files changed. It does not block on another caller's
// reload.
func (v *Value[T]) Get() T {
	if now := v.now(); now.UnixNano() >= v.next.Load() && v.mu.TryLock() {
		if now.UnixNano() >= v.next.Load() {
			v.checkLocked()
			v.next.Store(now.Add(v.interval).UnixNano())
		}
		v.mu.Unlock()
	}
	return *v.cur.Load()
}

// Reload looks at the files now and reloads them if they changed (a SIGHUP
// handler, a test). It returns the error of that load, or nil when nothing
// changed or the load succeeded.
func (v *Value[T]) Reload() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.checkLocked()
}

// Stats returns the counters.
func (v *Value[T]) Stats() Stats {
	s := Stats{Reloads: v.reloads.Load(), Failures: v.failures.Load()}
	if p := v.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

func (v *Value[T]) checkLocked() error {
	stamps, statErr := stat(v.paths)
	if statErr == nil && same(stamps, v.loaded) {
		return nil
	}
	err := statErr
	var t T
	if err == nil {
		t, err = v.load()
	}
	if err != nil {
		err = fmt.Errorf("reloading %s (keeping the previous one): %w", v.name, err)
		v.failures.Add(1)
		v.lastErr.Store(&err)
		if err.Error() != v.failMsg || (statErr == nil && !same(stamps, v.failed)) {
			v.log.Warn("reload failed", "what", v.name, "err", err)
		}
		v.failed, v.failMsg = stamps, err.Error()
		return err
	}
	v.cur.Store(&t)
	v.loaded, v.failed, v.failMsg = stamps, nil, ""
	v.reloads.Add(1)
	v.lastErr.Store(nil)
	v.log.Info("reloaded", "what", v.name, "files", v.paths)
	return nil
}

func stat(paths []string) ([]os.FileInfo, error) {
	out := make([]os.FileInfo, len(paths))
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		out[i] = fi
	}
	return out, nil
}

func same(a, b []os.FileInfo) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for i := range a {
		if !os.SameFile(a[i], b[i]) || !a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
