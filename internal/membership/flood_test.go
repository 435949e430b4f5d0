package membership

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/logx"
)

// countingHandler counts the lines logged through it before passing them on.
type countingHandler struct {
	slog.Handler
	n *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	h.n.Add(1)
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(as), h.n}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Issue 13, break 8: 728k garbage packets to the gossip port wrote 9.3 MB
// of ERROR lines in 10 s. Through logx, memberlist's lines stay bounded
// and what was held back is reported.
func TestMembership_GarbageOnTheGossipPortCannotFloodTheLog(t *testing.T) {
	var out lockedBuffer
	var provoked atomic.Int64
	const interval, maxLines = 200 * time.Millisecond, 40
	limited := logx.RateLimit(slog.NewTextHandler(&out, nil), logx.Options{Interval: interval, Burst: 5, MaxLines: maxLines})
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	m, err := New(Config{Name: "target", BindAddr: addr, GRPCAddr: "grpc-target", Tune: fast,
		Logger: slog.New(countingHandler{limited, &provoked})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })

	start := time.Now()
	udp, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	packet := make([]byte, 64)
	var wg sync.WaitGroup
	wg.Go(func() { // garbage streams over TCP
		for range 300 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				continue
			}
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff garbage"))
			c.Close()
		}
	})
	for i := 0; i < 20000 || provoked.Load() < 500; i++ {
		for j := range packet {
			packet[j] = byte(rng.Uint32())
		}
		packet[0] = byte(i % 32) // every message type memberlist knows, and some it does not
		udp.Write(packet)
		if time.Since(start) > 20*time.Second {
			break
		}
	}
	wg.Wait()
	flooded := time.Since(start)
	// Every provoked line is written or counted in a report, once its
	// interval is over.
	var lines []string
	var suppressed int64
	accounted := func() bool {
		lines = strings.Split(strings.TrimSpace(out.String()), "\n")
		suppressed = 0
		reports := 0
		for _, l := range lines {
			if i := strings.Index(l, "suppressed="); i >= 0 {
				var n int64
				fmt.Sscanf(l[i:], "suppressed=%d", &n)
				suppressed += n
				reports++
			}
		}
		return reports > 0 && int64(len(lines)-reports)+suppressed == provoked.Load()
	}
	waitFor(t, "every provoked line written or reported suppressed", accounted)
	elapsed := time.Since(start)
	// Each interval passes at most maxLines lines and one report; the
	// last report may come one interval after the last line.
	bound := (int(elapsed/interval) + 2) * (maxLines + 1)
	t.Logf("garbage for %v provoked %d log lines; %d written (%d bytes) in %v, bound %d; %d reported suppressed",
		flooded.Round(time.Millisecond), provoked.Load(), len(lines), len(out.String()), elapsed.Round(time.Millisecond), bound, suppressed)
	if provoked.Load() < 500 {
		t.Fatalf("the garbage provoked only %d log lines: the test does not flood", provoked.Load())
	}
	for _, l := range lines[:min(6, len(lines))] {
		t.Log(l)
	}
	if len(lines) > bound {
		t.Fatalf("%d lines written for %d provoked, more than the bound %d", len(lines), provoked.Load(), bound)
	}
}
