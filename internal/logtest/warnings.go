// Package logtest holds what tests use to read what code logged.
package logtest

import (
	"context"
	"log/slog"
	"sync"
)

// Warnings is a slog.Handler that keeps the messages of the Warn and Error
// records logged through it and passes every record on to the handler it
// wraps: for tests that assert what a node or client warned about.
type Warnings struct {
	slog.Handler
	w *warned
}

type warned struct {
	mu   sync.Mutex
	msgs []string
}

// NewWarnings wraps next.
func NewWarnings(next slog.Handler) Warnings { return Warnings{next, &warned{}} }

// Handle implements slog.Handler.
func (h Warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.w.mu.Lock()
		h.w.msgs = append(h.w.msgs, r.Message)
		h.w.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler; the result shares what h keeps.
func (h Warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return Warnings{h.Handler.WithAttrs(as), h.w}
}

// WithGroup implements slog.Handler; the result shares what h keeps.
func (h Warnings) WithGroup(name string) slog.Handler {
	return Warnings{h.Handler.WithGroup(name), h.w}
}

// Messages returns the warnings kept so far, oldest first.
func (h Warnings) Messages() []string {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	return append([]string(nil), h.w.msgs...)
}

// Reset forgets the warnings kept so far.
func (h Warnings) Reset() {
	h.w.mu.Lock()
	h.w.msgs = nil
	h.w.mu.Unlock()
}
