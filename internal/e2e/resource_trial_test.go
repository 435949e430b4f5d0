package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The resource trials of issue 13 (break 6), on a real ringcached process:
// abusive clients on one side, a well-behaved one on the other, and the
// node's own figures (RSS from /proc, goroutines from /metrics).
//
// CI runs them small. The figures in docs/operations.md are the same tests
// at the scale of the original trial:
//
//	RINGCACHE_TRIAL_SUBSCRIBERS=10000 go test -count=1 -run TestTrial_NonReading -v ./internal/e2e/
//	RINGCACHE_TRIAL_CONNS=20600 RINGCACHE_TRIAL_NOFILE=20000 go test -count=1 -run TestTrial_Idle -v ./internal/e2e/
//
// RINGCACHE_TRIAL_BIN runs another ringcached build (the one before a fix,
// for its figures); RINGCACHE_TRIAL_PROFILE and RINGCACHE_TRIAL_HEAP save
// the node's CPU profile during the abuse and its heap after it.
//
// The abusers dial from a loopback address of their own, not 127.0.0.1,
// so the node does not take them for its peers (members' hosts, 127.0.0.1
// here), whose connections it always admits; the well-behaved client
// dials from 127.0.0.3. Each run picks a new address for the abusers: the
// ports of the last run's connections, in TIME_WAIT, would slow the dials.

// abuserIP returns a random loopback address other than 127.0.0.x.
func abuserIP() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(254), rand.IntN(256), 1+rand.IntN(254))
}

// trialInt reads a trial size from the environment.
func trialInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// trialNode is one ringcached with its admin address.
type trialNode struct {
	*proc
	admin string
}

// startTrialNode starts a lone ringcached with at most nofile open files.
func startTrialNode(t *testing.T, nofile int, extra ...string) *trialNode {
	t.Helper()
	dir := t.TempDir()
	ports, gossipPorts, err := pickPorts(2)
	if err != nil {
		t.Fatal(err)
	}
	gossip := gossipPorts[0]
	n := &trialNode{
		proc: &proc{name: "n1", grpcAddr: fmt.Sprintf("127.0.0.1:%d", ports[0]), gossipAddr: fmt.Sprintf("127.0.0.1:%d", gossip),
			logPath: filepath.Join(dir, "n1.log"), done: make(chan struct{})},
		admin: fmt.Sprintf("127.0.0.1:%d", ports[1]),
	}
	logf, err := os.Create(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	bin := ringcachedBin
	if b := os.Getenv("RINGCACHE_TRIAL_BIN"); b != "" {
		bin = b // another build, such as the one before a fix
	}
	args := append([]string{"-c", `ulimit -n "$1" && shift && exec "$@"`, "sh", strconv.Itoa(nofile), bin,
		"--name", "n1", "--grpc-addr", n.grpcAddr, "--gossip-addr", n.gossipAddr, "--gossip-preset", "local",
		"--admin-addr", n.admin, "--data-dir", filepath.Join(dir, "data"), "--log-level", "warn"}, extra...)
	n.cmd = exec.Command("sh", args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.waitErr = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		if !n.exited() {
			_ = n.cmd.Process.Kill()
		}
		<-n.done
		if t.Failed() {
			t.Logf("--- node log ---\n%s", n.log())
		}
	})
	eventually(t, 20*time.Second, "the node serves", func() error {
		if n.exited() {
			t.Fatalf("ringcached exited: %v\n%s", n.waitErr, n.log())
		}
		return serving(n.grpcAddr)
	})
	return n
}

// rssMiB is the node's resident set size.
func (n *trialNode) rssMiB(t *testing.T) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// metric returns the value of the first series of name on /metrics, or -1.
func (n *trialNode) metric(t *testing.T, name string) float64 {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Logf("metrics: %v", err)
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return -1
}

// gc makes the node collect garbage (it runs with --pprof), saving the
// heap profile to $RINGCACHE_TRIAL_HEAP when set.
func (n *trialNode) gc(t *testing.T) {
	resp, err := http.Get("http://" + n.admin + "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if path := os.Getenv("RINGCACHE_TRIAL_HEAP"); path != "" {
		os.WriteFile(path, b, 0o644)
	}
}

// dialFrom returns a gRPC client connection to addr from the local IP src.
func dialFrom(t *testing.T, src, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	cc, err := grpc.NewClient("passthrough:///"+addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// setRate runs a well-behaved client: workers callers Setting small values
// for d; it returns Sets per second and the slowest Set.
func setRate(cache pb.CacheClient, workers int, d time.Duration) (rate float64, slowest time.Duration, errs int64) {
	var sets, failed atomic.Int64
	var mu sync.Mutex
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			value := make([]byte, 64)
			for i := 0; time.Now().Before(end); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				_, err := cache.Set(ctx, &pb.SetRequest{Namespace: "default", Key: fmt.Sprintf("k%d-%d", w, i%1000), Value: value})
				took := time.Since(start)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				sets.Add(1)
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return float64(sets.Load()) / d.Seconds(), slowest, failed.Load()
}

// TestTrial_NonReadingWatchersDoNotStallSets opens many
// WatchInvalidations streams that read their first message and then never
// read again, while a well-behaved client Sets. The node must drop them
// (the gauge of subscribers returns to 0) with its Set rate, RSS and
// goroutines bounded meanwhile.
func TestTrial_NonReadingWatchersDoNotStallSets(t *testing.T) {
	subscribers := trialInt(t, "RINGCACHE_TRIAL_SUBSCRIBERS", 500)
	n := startTrialNode(t, trialInt(t, "RINGCACHE_TRIAL_NOFILE", 20000), "--pprof")
	good := dialFrom(t, "127.0.0.3", n.grpcAddr)
	defer good.Close()
	cache := pb.NewCacheClient(good)

	const workers = 8
	rssStart, gStart := n.rssMiB(t), n.metric(t, "go_goroutines")
	before, slowBefore, _ := setRate(cache, workers, 3*time.Second)

	// The abusers: 100 streams a connection, each with HTTP/2's default
	// 64 KiB window. (A client that lets gRPC grow its window buffers
	// what it does not read itself: to the node it is a reader, costing
	// it CPU but no memory, until its window is spent.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const perConn = 100
	var conns []*grpc.ClientConn
	defer func() {
		for _, cc := range conns {
			cc.Close()
		}
	}()
	abuser := abuserIP()
	for range (subscribers + perConn - 1) / perConn {
		conns = append(conns, dialFrom(t, abuser, n.grpcAddr, grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535)))
	}
	var subscribed, refused, failed atomic.Int64
	streams := make([]pb.Cache_WatchInvalidationsClient, subscribers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	opened := time.Now()
	for i := range subscribers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := pb.NewCacheClient(conns[i/perConn]).WatchInvalidations(ctx, &pb.WatchInvalidationsRequest{})
			if err == nil {
				_, err = s.Recv() // the "subscribed" message; never read again
			}
			switch {
			case err == nil:
				subscribed.Add(1)
				streams[i] = s
			case status.Code(err) == codes.ResourceExhausted:
				refused.Add(1)
			default:
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d streams opened in %s: %d subscribed, %d refused (RESOURCE_EXHAUSTED), %d failed otherwise",
		subscribers, time.Since(opened).Round(time.Millisecond), subscribed.Load(), refused.Load(), failed.Load())

	var peakRSS, peakG float64
	sample := func() {
		peakRSS, peakG = max(peakRSS, n.rssMiB(t)), max(peakG, n.metric(t, "go_goroutines"))
	}
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			sample()
			select {
			case <-stopSampling:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
	if path := os.Getenv("RINGCACHE_TRIAL_PROFILE"); path != "" {
		go func() {
			resp, err := http.Get("http://" + n.admin + "/debug/pprof/profile?seconds=5")
			if err != nil {
				t.Log(err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			os.WriteFile(path, b, 0o644)
		}()
	}
	during, slowDuring, setErrs := setRate(cache, workers, 10*time.Second)
	close(stopSampling)
	sampler.Wait()
	sample()
	t.Logf("Sets/s before %.0f (slowest %s), during %.0f (slowest %s, %d failed)", before, slowBefore.Round(time.Microsecond), during, slowDuring.Round(time.Microsecond), setErrs)
	t.Logf("node RSS %.0f MiB at start, %.0f MiB peak; goroutines %.0f at start, %.0f peak", rssStart, peakRSS, gStart, peakG)

	// Every non-reading subscriber is dropped: the gauge returns to 0. A
	// subscriber falls behind only as changes come, so on a machine slow
	// enough that the load above did not fill every stream's window the
	// writes go on while we wait.
	eventually(t, 30*time.Second, "every non-reading subscriber dropped", func() error {
		setRate(cache, workers, 200*time.Millisecond)
		if g := n.metric(t, "ringcache_watch_subscribers"); g != 0 {
			return fmt.Errorf("ringcache_watch_subscribers = %v", g)
		}
		return nil
	})
	n.gc(t)
	t.Logf("dropped: %v fell behind, %v missed the send deadline; node RSS %.0f MiB, heap in use %.0f MiB after a GC, goroutines %.0f",
		n.metric(t, "ringcache_watch_dropped_total"), n.metric(t, "ringcache_stream_send_timeouts_total"),
		n.rssMiB(t), n.metric(t, "go_memstats_heap_inuse_bytes")/(1<<20), n.metric(t, "go_goroutines"))
	// Read now, a dropped stream ends with RESOURCE_EXHAUSTED, or with
	// UNAVAILABLE where the node closed the connection of a client that
	// left several streams unread.
	ends := map[codes.Code]int{}
	for _, s := range streams {
		if s == nil {
			continue
		}
		var err error
		for err == nil {
			_, err = s.Recv()
		}
		ends[status.Code(err)]++
	}
	n.gc(t)
	t.Logf("the dropped streams ended with %v; connections closed for their unread streams: %v; node heap in use %.0f MiB after a GC",
		ends, n.metric(t, "ringcache_connections_struck_total"), n.metric(t, "go_memstats_heap_inuse_bytes")/(1<<20))
	for code, count := range ends {
		if code != codes.ResourceExhausted && code != codes.Unavailable {
			t.Errorf("%d dropped streams ended with %v, want RESOURCE_EXHAUSTED or UNAVAILABLE", count, code)
		}
	}
	if during < before/4 {
		t.Errorf("Sets/s fell from %.0f to %.0f while %d subscribers did not read", before, during, subscribers)
	}
}
