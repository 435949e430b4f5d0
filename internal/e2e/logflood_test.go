package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/logx"
)

// Issue 13, break 8, on a real ringcached: 728k garbage packets to the
// gossip port wrote 9.3 MB of ERROR lines in 10 s. Now each message passes
// logx.DefaultBurst times per interval and the rest is reported counted.
func TestLogFlood_GarbageOnTheGossipPortIsCountedNotLogged(t *testing.T) {
	f := newFleet(t, "n1")
	f.launch(f.writeConfig("cache.yaml", "namespaces:\n  c: {}\n"), nil, f.all...)
	f.waitUp(1, f.all...)
	p := f.all[0]
	before := len(p.log())

	const flood = 2 * time.Second
	udp, err := net.Dial("udp", p.gossipAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for start := time.Now(); time.Since(start) < flood; {
			if c, err := net.Dial("tcp", p.gossipAddr); err == nil {
				c.Write([]byte("\x47garbage over TCP\x00\xff"))
				c.Close()
			}
		}
	})
	rng := rand.New(rand.NewPCG(3, 4))
	packet := make([]byte, 64)
	sent := 0
	for start := time.Now(); time.Since(start) < flood; sent++ {
		for i := range packet {
			packet[i] = byte(rng.Uint32())
		}
		packet[0] = byte(sent % 32)
		udp.Write(packet)
	}
	wg.Wait()

	suppressedRe := regexp.MustCompile(`suppressed=(\d+)`)
	var logged string
	eventually(t, logx.DefaultInterval+10*time.Second, "a report of the suppressed lines", func() error {
		logged = p.log()[before:]
		if !suppressedRe.MatchString(logged) {
			return fmt.Errorf("no report yet (%d bytes logged)", len(logged))
		}
		return nil
	})
	suppressed := 0
	for _, m := range suppressedRe.FindAllStringSubmatch(logged, -1) {
		n, _ := strconv.Atoi(m[1])
		suppressed += n
	}
	lines := strings.Count(logged, "\n")
	t.Logf("%d UDP packets and TCP garbage for %v: %d lines (%d bytes) logged, %d reported suppressed", sent, flood, lines, len(logged), suppressed)
	// Two intervals at most (the flood may straddle one boundary), each
	// bounded by MaxLines and a report.
	if lines > 2*(logx.DefaultMaxLines+1) || suppressed < 1000 {
		t.Fatalf("%d lines logged and %d suppressed; want at most %d lines and the flood counted:\n%s",
			lines, suppressed, 2*(logx.DefaultMaxLines+1), logged[:min(len(logged), 4000)])
	}
	if p.exited() {
		t.Fatal("the node died under the flood")
	}
}
