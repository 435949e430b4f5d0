package clustertest

import (
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a logger that writes to t's output (shown when the test
// fails, or with -v), one line per record prefixed with name, from level
// up. Records logged after t's cleanup has run are dropped: a line from a
// goroutine that outlived the test must not crash the test binary (goleak
// reports such goroutines).
//
// Start gives every node one, at Options.LogLevel.
func Logger(t testing.TB, name string, level slog.Leveler) *slog.Logger {
	return newLogSink(t).logger(name, level)
}

// logSink is t's output until t's cleanup stops it. slog's handlers write
// each record with one Write call, so lines of several nodes do not mix.
type logSink struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

// newLogSink returns a sink that stops at t's cleanup, after every cleanup
// registered later (Cluster.Shutdown among them) has run.
func newLogSink(t testing.TB) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) logger(name string, level slog.Leveler) *slog.Logger {
	w := &prefixWriter{sink: s, prefix: name + ": "}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: shortTime}))
}

// shortTime prints a record's time as a time of day with milliseconds:
// enough to line up the nodes of one test.
func shortTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
	}
	return a
}

type prefixWriter struct {
	sink   *logSink
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	s := w.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		line := make([]byte, 0, len(w.prefix)+len(p))
		_, _ = s.t.Output().Write(append(append(line, w.prefix...), p...))
	}
	return len(p), nil
}
