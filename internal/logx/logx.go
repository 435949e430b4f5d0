// Package logx keeps input from the network from flooding a node's log.
//
// RateLimit wraps a slog.Handler: within each Interval, each distinct
// message (its level and text up to its second ": ", where the error
// detail of "component: what failed: why" begins, with every word that
// holds a digit masked, so lines that differ only in an address, a port, a
// count, a hex dump or the cause are one message) passes at most
// Burst times, and all messages together at most MaxLines times. What is
// held back is counted, and once the interval is over one WARN line,
// "log lines suppressed", says how many lines were held back and which
// messages they were. The output is thus bounded by MaxLines plus one line
// per Interval, however many events a peer or an attacker provokes.
//
// Handlers derived with WithAttrs and WithGroup share their parent's
// counts, so one limit covers every logger of a process.
package logx

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval = 10 * time.Second
	DefaultBurst    = 10
	DefaultMaxLines = 100
	// maxMessages bounds the distinct messages counted per interval; the
	// lines of further ones count against MaxLines together.
	maxMessages = 1024
	// maxKey bounds the part of a message that tells messages apart.
	maxKey = 160
	// reportSamples is how many messages the report line names.
	reportSamples = 3
)

// Options configures RateLimit. Zero fields take their defaults.
type Options struct {
	// Interval is the window the limits count in; default 10 s.
	Interval time.Duration
	// Burst is how many lines of one message pass per Interval; default 10.
	Burst int
	// MaxLines is how many lines of all messages pass per Interval;
	// default 100.
	MaxLines int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RateLimit returns h limited as the package doc says.
func RateLimit(h slog.Handler, opts Options) slog.Handler {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.MaxLines <= 0 {
		opts.MaxLines = DefaultMaxLines
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &handler{next: h, lim: &limiter{opts: opts, report: h, start: opts.Now(), seen: map[string]*count{}}}
}

type handler struct {
	next slog.Handler
	lim  *limiter
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	pass, report := h.lim.admit(r.Level, r.Message)
	if report != nil {
		_ = h.lim.report.Handle(ctx, *report)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), lim: h.lim}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), lim: h.lim}
}

// limiter holds the counts of the current interval.
type limiter struct {
	opts   Options
	report slog.Handler // the handler RateLimit wrapped: reports carry its attrs

	mu         sync.Mutex
	start      time.Time
	seen       map[string]*count
	lines      int // lines passed this interval
	suppressed int // lines held back this interval
	timer      *time.Timer
}

type count struct {
	sample     string // the first text of the message this interval
	passed     int
	suppressed int
}

// admit counts one line and reports whether it passes, and the report of
// an interval that has just ended, if any.
func (l *limiter) admit(level slog.Level, msg string) (bool, *slog.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	var report *slog.Record
	if now.Sub(l.start) >= l.opts.Interval {
		report = l.rollLocked(now)
	}
	key := level.String() + " " + mask(msg)
	c := l.seen[key]
	if c == nil {
		if len(l.seen) >= maxMessages {
			key = "other messages"
			c = l.seen[key]
		}
		if c == nil {
			c = &count{sample: msg}
			l.seen[key] = c
		}
	}
	if c.passed < l.opts.Burst && l.lines < l.opts.MaxLines {
		c.passed++
		l.lines++
		return true, report
	}
	c.suppressed++
	l.suppressed++
	if l.timer == nil { // report at the end of the interval even if nothing else is logged
		start := l.start
		l.timer = time.AfterFunc(l.opts.Interval-now.Sub(l.start), func() { l.flush(start) })
	}
	return false, report
}

// flush reports the interval that began at start, unless a line logged
// since has already done so.
func (l *limiter) flush(start time.Time) {
	l.mu.Lock()
	var report *slog.Record
	if l.start.Equal(start) {
		report = l.rollLocked(l.opts.Now())
	}
	l.mu.Unlock()
	if report != nil {
		_ = l.report.Handle(context.Background(), *report)
	}
}

// rollLocked starts a new interval at now and returns the report of the
// one that ended, nil when it held nothing back.
func (l *limiter) rollLocked(now time.Time) *slog.Record {
	var report *slog.Record
	if l.suppressed > 0 {
		var held []*count
		for _, c := range l.seen {
			if c.suppressed > 0 {
				held = append(held, c)
			}
		}
		sort.Slice(held, func(i, j int) bool { return held[i].suppressed > held[j].suppressed })
		var top []string
		for _, c := range held[:min(len(held), reportSamples)] {
			top = append(top, fmt.Sprintf("%d× %q", c.suppressed, c.sample))
		}
		r := slog.NewRecord(now, slog.LevelWarn, "log lines suppressed", 0)
		r.AddAttrs(slog.Int("suppressed", l.suppressed), slog.Int("messages", len(held)),
			slog.Duration("interval", now.Sub(l.start).Round(time.Millisecond)), slog.String("most", strings.Join(top, "; ")))
		report = &r
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.start, l.seen, l.lines, l.suppressed = now, map[string]*count{}, 0, 0
	return report
}

// mask returns the part of msg that tells messages apart: up to its
// second ": " (memberlist's "memberlist: Failed to decode ping request:
// <decoder error>" is one message whatever the error), with every word (a
// run of letters and digits) that holds a digit replaced by '#', so
// numbers, addresses, ports and hex dumps do not make messages distinct;
// at most maxKey bytes.
func mask(msg string) string {
	if i := strings.Index(msg, ": "); i >= 0 {
		if j := strings.Index(msg[i+2:], ": "); j >= 0 {
			msg = msg[:i+2+j]
		}
	}
	var b strings.Builder
	for i := 0; i < len(msg) && b.Len() < maxKey; {
		j, digit := i, false
		for j < len(msg) && isAlnum(msg[j]) {
			digit = digit || '0' <= msg[j] && msg[j] <= '9'
			j++
		}
		switch {
		case j == i:
			b.WriteByte(msg[i])
			j++
		case digit:
			b.WriteByte('#')
		default:
			b.WriteString(msg[i:j])
		}
		i = j
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
