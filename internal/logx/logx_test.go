package logx_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/logx"
)

// buffer is a concurrency-safe log destination.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.b.String()), "\n")
}

type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestRateLimit_PassesABurstOfAMessageThenCountsAndReports(t *testing.T) {
	var out buffer
	clock := &fakeNow{t: time.Unix(1_700_000_000, 0)}
	log := slog.New(logx.RateLimit(slog.NewTextHandler(&out, nil), logx.Options{Interval: time.Minute, Burst: 5, Now: clock.now}))
	for i := range 100 { // one message, from ever other ports
		log.Error(fmt.Sprintf("memberlist: failed to decode packet from=10.0.0.1:%d", 40000+i))
	}
	log.With("component", "x").Warn("another message")
	if got := len(out.lines()); got != 6 {
		t.Fatalf("%d lines logged, want 5 of the repeated message and the other one:\n%s", got, strings.Join(out.lines(), "\n"))
	}
	clock.add(time.Minute)
	log.Info("next interval")
	lines := out.lines()
	report := lines[len(lines)-2]
	if !strings.Contains(report, "log lines suppressed") || !strings.Contains(report, "suppressed=95") ||
		!strings.Contains(report, "failed to decode packet") {
		t.Fatalf("report line = %s; want 95 suppressed lines of the decode message", report)
	}
	if !strings.Contains(lines[len(lines)-1], "next interval") {
		t.Fatalf("last line = %s", lines[len(lines)-1])
	}
}

func TestRateLimit_MaxLinesBoundsManyDistinctMessages(t *testing.T) {
	var out buffer
	clock := &fakeNow{t: time.Unix(1_700_000_000, 0)}
	log := slog.New(logx.RateLimit(slog.NewTextHandler(&out, nil), logx.Options{Interval: time.Minute, Burst: 5, MaxLines: 50, Now: clock.now}))
	for i := range 5000 {
		log.Error("garbage " + strings.Repeat("x", i%300) + string(rune('a'+i%26)))
	}
	if got := len(out.lines()); got != 50 {
		t.Fatalf("%d lines logged of 5000 distinct messages, want MaxLines = 50", got)
	}
	clock.add(time.Minute)
	log.Info("next")
	if lines := out.lines(); !strings.Contains(lines[50], "suppressed=4950") {
		t.Fatalf("report = %s; want 4950 suppressed", lines[50])
	}
}

func TestRateLimit_ReportsTheLastIntervalWithoutFurtherLines(t *testing.T) {
	var out buffer
	log := slog.New(logx.RateLimit(slog.NewJSONHandler(&out, nil), logx.Options{Interval: 50 * time.Millisecond, Burst: 1}))
	for range 10 {
		log.Error("flood")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(strings.Join(out.lines(), "\n"), `"suppressed":9`) {
		if time.Now().After(deadline) {
			t.Fatalf("no report of the 9 suppressed lines once the interval ended:\n%s", strings.Join(out.lines(), "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(out.lines()); got != 2 {
		t.Fatalf("%d lines, want the first and the report", got)
	}
}

func TestRateLimit_ConcurrentLoggersShareOneLimit(t *testing.T) {
	var out buffer
	base := slog.New(logx.RateLimit(slog.NewTextHandler(&out, nil), logx.Options{Interval: time.Hour, Burst: 3}))
	var wg sync.WaitGroup
	for i := range 8 {
		log := base.With("worker", i).WithGroup("g")
		wg.Go(func() {
			for range 100 {
				log.Warn("same message")
			}
		})
	}
	wg.Wait()
	if got := len(out.lines()); got != 3 {
		t.Fatalf("%d lines from 8 derived loggers, want the burst of 3 shared", got)
	}
}

func BenchmarkRateLimit_Passing(b *testing.B) {
	log := slog.New(logx.RateLimit(slog.NewTextHandler(io.Discard, nil), logx.Options{Burst: 1 << 30, MaxLines: 1 << 30}))
	for b.Loop() {
		log.Info("member joined", "name", "n1")
	}
}

func BenchmarkRateLimit_Suppressing(b *testing.B) {
	log := slog.New(logx.RateLimit(slog.NewTextHandler(io.Discard, nil), logx.Options{Burst: 1, Interval: time.Hour}))
	for b.Loop() {
		log.Error("memberlist: failed to decode packet from=10.0.0.1:40000")
	}
}

func TestRateLimit_LinesThatDifferInNumbersAreOneMessage(t *testing.T) {
	var out buffer
	log := slog.New(logx.RateLimit(slog.NewTextHandler(&out, nil), logx.Options{Interval: time.Hour, Burst: 1}))
	for _, m := range []string{
		"memberlist: Got invalid checksum for UDP packet: 3af4d, ffb2dd",
		"memberlist: Got invalid checksum for UDP packet: 91c0e, 0x1f",
		"memberlist: Got invalid checksum for UDP packet: 7, 8",
	} {
		log.Error(m)
	}
	log.Error("memberlist: Got invalid length for UDP packet: 3af4d")
	if got := len(out.lines()); got != 2 {
		t.Fatalf("%d lines, want one per message:\n%s", got, strings.Join(out.lines(), "\n"))
	}
}
