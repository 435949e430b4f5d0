package membership

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ringcache/ringcache/internal/logtest"
)

// joiner starts a node that joins seed with the given keys (nil: plaintext)
// and retries often.
func joiner(t *testing.T, name string, keys [][]byte, seed string, tune ...func(*memberlist.Config)) *Membership {
	t.Helper()
	m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", Join: []string{seed}, Keys: keys,
		RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 100 * time.Millisecond, Logger: testLogger(t, name),
		Tune: func(c *memberlist.Config) {
			fast(c)
			for _, f := range tune {
				f(c)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

func waitJoinState(t *testing.T, m *Membership, want JoinState) JoinStatus {
	t.Helper()
	var st JoinStatus
	waitFor(t, "join state "+want.String(), func() bool { st = m.JoinStatus(); return st.State == want })
	return st
}

func TestMembership_JoinStatusTellsRefusedFromUnreachable(t *testing.T) {
	k1, k2 := [][]byte{testKey(1)}, [][]byte{testKey(2)}
	for _, tc := range []struct {
		name             string
		seedKeys, myKeys [][]byte
	}{
		{"another key", k1, k2},
		{"plaintext joining encrypted", k1, nil},
		{"encrypted joining plaintext", nil, k1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := joiner(t, "seed", tc.seedKeys, "")
			m := joiner(t, "m", tc.myKeys, seed.LocalAddr())
			st := waitJoinState(t, m, JoinRefused)
			if !errors.Is(st.Err, ErrSeedsRefused) || errors.Is(st.Err, ErrSeedsUnreachable) {
				t.Fatalf("err = %v, want ErrSeedsRefused", st.Err)
			}
			select {
			case <-m.Joined():
				t.Fatal("Joined closed for a refused node")
			default:
			}
			if len(seed.Alive()) != 1 {
				t.Fatalf("the seed admitted the refused node: %v", names(seed.Alive()))
			}
			// Retries go on: later attempts are counted and still refused.
			attempts := st.Attempts
			waitFor(t, "another attempt", func() bool { return m.JoinStatus().Attempts > attempts })
			if st := m.JoinStatus(); st.State != JoinRefused {
				t.Fatalf("state %v after a retry", st.State)
			}
		})
	}
}

func TestMembership_JoinStatusUnreachableWhenNothingListens(t *testing.T) {
	m := joiner(t, "m", nil, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	st := waitJoinState(t, m, JoinUnreachable)
	if !errors.Is(st.Err, ErrSeedsUnreachable) {
		t.Fatalf("err = %v", st.Err)
	}
}

func TestMembership_JoinStatusUnreachableWhenTheOnlySeedIsItself(t *testing.T) {
	// A DNS name that resolves to this node (a one-pod headless Service).
	port := freePort(t)
	m, err := New(Config{Name: "m", BindAddr: fmt.Sprintf("127.0.0.1:%d", port), Join: []string{fmt.Sprintf("localhost:%d", port)},
		RetryInterval: 20 * time.Millisecond, Tune: fast, Logger: testLogger(t, "m")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	st := waitJoinState(t, m, JoinUnreachable)
	if !errors.Is(st.Err, ErrSeedsUnreachable) {
		t.Fatalf("err = %v", st.Err)
	}
}

// listen serves each TCP connection with serve until the test ends.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func TestMembership_JoinStatusRefusedByANonGossipPort(t *testing.T) {
	// Another service on the seed address (a gRPC port by mistake) answers
	// with something that is not gossip.
	seed := listen(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
	})
	m := joiner(t, "m", nil, seed)
	if st := waitJoinState(t, m, JoinRefused); !errors.Is(st.Err, ErrSeedsRefused) {
		t.Fatalf("err = %v", st.Err)
	}
}

func TestMembership_JoinStatusSilentSeedIsUnreachable(t *testing.T) {
	// A seed that accepts and never answers (a paused process: the kernel
	// still completes the handshake) is not a refusal. Pending while the
	// first attempt waits for it.
	release := make(chan struct{})
	seed := listen(t, func(c net.Conn) { <-release })
	t.Cleanup(func() { close(release) }) // runs before the listener's cleanup
	m := joiner(t, "m", nil, seed, func(c *memberlist.Config) { c.TCPTimeout = time.Second })
	if st := m.JoinStatus(); st.State != JoinPending || st.Err != nil {
		t.Fatalf("status %+v during the first attempt, want pending", st)
	}
	if st := waitJoinState(t, m, JoinUnreachable); !errors.Is(st.Err, ErrSeedsUnreachable) {
		t.Fatalf("err = %v", st.Err)
	}
}

func TestMembership_RefusedNodeJoinsOnceItsKeysMatch(t *testing.T) {
	seed := joiner(t, "seed", [][]byte{testKey(1)}, "")
	m := joiner(t, "m", [][]byte{testKey(2)}, seed.LocalAddr())
	waitJoinState(t, m, JoinRefused)
	if err := m.InstallKey(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if err := m.UseKey(testKey(1)); err != nil {
		t.Fatal(err)
	}
	if st := waitJoinState(t, m, JoinJoined); st.Err != nil {
		t.Fatalf("joined with err %v", st.Err)
	}
	waitFor(t, "the seed to list m", func() bool { return len(seed.Alive()) == 2 })
}

func TestClassifyJoin(t *testing.T) {
	boom := errors.New("failed to join 10.0.0.1:7946: something")
	for _, tc := range []struct {
		joined, answered bool
		err              error
		want             JoinState
		wantErr          error
	}{
		{true, true, nil, JoinJoined, nil},
		{true, false, boom, JoinJoined, nil}, // joined by one seed, another failed
		{false, true, boom, JoinRefused, ErrSeedsRefused},
		{false, true, nil, JoinRefused, ErrSeedsRefused}, // answered, yet alone
		{false, false, boom, JoinUnreachable, ErrSeedsUnreachable},
		{false, false, nil, JoinUnreachable, ErrSeedsUnreachable},
	} {
		state, err := classifyJoin(tc.joined, tc.answered, tc.err)
		if state != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("classifyJoin(%v, %v, %v) = %v, %v; want %v, %v", tc.joined, tc.answered, tc.err, state, err, tc.want, tc.wantErr)
		}
		if tc.err != nil && err != nil && !errors.Is(err, tc.err) {
			t.Errorf("classifyJoin lost the cause: %v", err)
		}
	}
}

func TestMembership_OneRefusingSeedOutweighsSeedsThatAreDown(t *testing.T) {
	seed := joiner(t, "seed", [][]byte{testKey(1)}, "")
	down := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	m, err := New(Config{Name: "m", BindAddr: "127.0.0.1:0", Join: []string{down, seed.LocalAddr()}, Keys: [][]byte{testKey(2)},
		RetryInterval: 20 * time.Millisecond, Tune: fast, Logger: testLogger(t, "m")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	st := waitJoinState(t, m, JoinRefused)
	msg := st.Err.Error()
	if !errors.Is(st.Err, ErrSeedsRefused) || !strings.Contains(msg, down) || !strings.Contains(msg, seed.LocalAddr()) || strings.Contains(msg, "\n") {
		t.Fatalf("err = %q, want one line naming both seeds", msg)
	}
}

// silentListener listens on loopback and never answers what it reads;
// accepted is signalled once bytes came in: the dialler's connection is up
// and it waits for a reply.
func silentListener(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	release, in := make(chan struct{}), make(chan struct{}, 1)
	addr = listen(t, func(c net.Conn) {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			select {
			case in <- struct{}{}:
			default:
			}
		}
		<-release
	})
	t.Cleanup(func() { close(release) })
	return addr, in
}

func TestMembership_ShutdownDoesNotWaitForASilentSeed(t *testing.T) {
	seed, accepted := silentListener(t)
	const tcpTimeout = 30 * time.Second
	m := joiner(t, "m", nil, seed, func(c *memberlist.Config) { c.TCPTimeout = tcpTimeout })
	<-accepted
	start := time.Now()
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > tcpTimeout/2 {
		t.Fatalf("Shutdown took %v: it waited for the join's TCP timeout", took)
	}
}

// A peer that gossip lists alive but that stopped answering (paused, or
// cut off a moment ago) must not hold a leave: the push of the leaving
// mark to it gives up at the announce's timeout, and Shutdown ends the
// push in flight rather than wait for memberlist's TCP timeout. The
// package's goleak check then finds nothing left running.
func TestMembership_ASilentPeerHoldsNeitherTheLeaveNorShutdown(t *testing.T) {
	silent, accepted := silentListener(t)
	const tcpTimeout = 30 * time.Second
	m, err := New(Config{Name: "m", BindAddr: "127.0.0.1:0", Logger: testLogger(t, "m"),
		Tune: func(c *memberlist.Config) { fast(c); c.TCPTimeout = tcpTimeout }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	// A member only this node's list holds: memberlist never probes it.
	m.mu.Lock()
	m.setLocked(record{Member: Member{Name: "ghost", GossipAddr: silent, State: StateAlive}})
	m.mu.Unlock()

	start := time.Now()
	m.AnnounceLeaving(time.Second)
	<-accepted // the push reached the ghost, which does not answer
	if took := time.Since(start); took > tcpTimeout/2 {
		t.Fatalf("AnnounceLeaving took %v: it waited for the push's TCP timeout", took)
	}
	start = time.Now()
	if err := m.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > tcpTimeout/2 {
		t.Fatalf("Shutdown took %v: it waited for the push in flight", took)
	}
}

// A leave pushes its mark to pushLeavingParallel peers at a time, and
// starts no push after its timeout: a large cluster of stalled peers does
// not get a connection each at once.
func TestMembership_TheLeavingMarkGoesToABoundedNumberOfPeersAtOnce(t *testing.T) {
	var mu sync.Mutex
	var from []string // remote address of each accepted connection, in order
	silent := listen(t, func(c net.Conn) {
		mu.Lock()
		from = append(from, c.RemoteAddr().String())
		mu.Unlock()
		_, _ = io.Copy(io.Discard, c) // never answers; ends when the pusher closes
	})
	stall := pushLeavingStall
	pushLeavingStall = time.Hour // a stalled push keeps its turn
	t.Cleanup(func() { pushLeavingStall = stall })
	m, err := New(Config{Name: "m", BindAddr: "127.0.0.1:0", Logger: testLogger(t, "m"),
		Tune: func(c *memberlist.Config) { fast(c); c.TCPTimeout = 30 * time.Second }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	// Members only this node's list holds, all at the stalled listener.
	ghosts := 3 * pushLeavingParallel
	m.mu.Lock()
	for i := range ghosts {
		m.setLocked(record{Member: Member{Name: fmt.Sprintf("ghost-%d", i), GossipAddr: silent, State: StateAlive}})
	}
	m.mu.Unlock()

	m.AnnounceLeaving(time.Second)
	if err := m.Shutdown(); err != nil { // waits for every push worker
		t.Fatal(err)
	}
	// Connections are accepted in the order they were made: once one made
	// now is accepted, every push's is.
	marker, err := net.Dial("tcp", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer marker.Close()
	pushes := -1
	waitFor(t, "the marker connection to be accepted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains(from, marker.LocalAddr().String()) {
			pushes = len(from) - 1
			return true
		}
		return false
	})
	if pushes != pushLeavingParallel {
		t.Fatalf("%d pushes reached the %d stalled peers; want %d: as many as run at once, and none after the timeout", pushes, ghosts, pushLeavingParallel)
	}
}

// A leaving node stops joining its seeds. When a whole cluster stops, the
// last nodes to leave find themselves alone, and their seeds, leaving too,
// answered like seeds that refuse them: every node logged an error about
// gossip keys on a clean stop.
func TestMembership_ALeavingNodeStopsJoining(t *testing.T) {
	seed := listen(t, func(c net.Conn) { _, _ = io.WriteString(c, "not gossip\r\n") })
	m := joiner(t, "m", nil, seed)
	waitFor(t, "a refused join attempt", func() bool { return m.JoinStatus().State == JoinRefused })
	m.AnnounceLeaving(time.Second)
	waitFor(t, "the join loop to stop", func() bool {
		select {
		case <-m.joinDone:
			return true
		default:
			return false
		}
	})
}

// Peers that accept the push and never answer (blackholed, paused) give
// up their turn after pushLeavingStall: they do not keep the leaving mark
// from a live peer, though there are more of them than turns.
func TestMembership_StalledPeersDoNotKeepTheLeavingMarkFromTheOthers(t *testing.T) {
	silent, _ := silentListener(t)
	// A stalled push holds its connection for memberlist's TCP timeout.
	m := startSilent(t, "m", func(c *memberlist.Config) { c.TCPTimeout = 30 * time.Second })
	b := startSilent(t, "b", nil, m.LocalAddr())
	for _, x := range []*Membership{m, b} {
		waitFor(t, "two members", func() bool { return len(x.Alive()) == 2 })
	}
	m.mu.Lock()
	for i := range 3 * pushLeavingParallel {
		m.setLocked(record{Member: Member{Name: fmt.Sprintf("ghost-%d", i), GossipAddr: silent, State: StateAlive}})
	}
	m.mu.Unlock()
	m.AnnounceLeaving(4 * time.Second)
	waitFor(t, "b to list m as left (gossip is off: only the push carries it)", func() bool { return stateOf(b, "m") == StateLeft })
}

// TestMembership_JoinFailuresAreNoWarningUntilTheyLast: nodes started
// together miss each other's first attempts, or reach a seed that has not
// finished starting, which is no cause for a warning; seeds that stay away
// are, once, and seeds that keep refusing this node an error, once.
func TestMembership_JoinFailuresAreNoWarningUntilTheyLast(t *testing.T) {
	const warnAfter = 300 * time.Millisecond
	start := func(name, seed string, keys [][]byte) (*Membership, logtest.Warnings) {
		w := logtest.NewWarnings(testLogger(t, name).Handler())
		m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", Join: []string{seed}, Keys: keys,
			RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 50 * time.Millisecond, JoinWarnAfter: warnAfter,
			Logger: slog.New(w), Tune: fast})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m, w
	}

	// A seed that comes up after the node's first attempts.
	port := freePort(t)
	began := time.Now()
	early, w := start("early", fmt.Sprintf("127.0.0.1:%d", port), nil)
	waitJoinState(t, early, JoinUnreachable)
	late, err := New(Config{Name: "late", BindAddr: fmt.Sprintf("127.0.0.1:%d", port), Logger: testLogger(t, "late"), Tune: fast})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { late.Shutdown() })
	waitJoinState(t, early, JoinJoined)
	if msgs := w.Messages(); len(msgs) > 0 && time.Since(began) < warnAfter {
		t.Fatalf("warned %q within %v of starting", msgs, time.Since(began))
	}

	// Seeds that never come: one warning, after warnAfter.
	began = time.Now()
	lonely, w := start("lonely", fmt.Sprintf("127.0.0.1:%d", freePort(t)), nil)
	waitFor(t, "a warning", func() bool { return len(w.Messages()) > 0 })
	if waited := time.Since(began); waited < warnAfter {
		t.Fatalf("warned after %v, before %v", waited, warnAfter)
	}
	attempts := lonely.JoinStatus().Attempts
	waitFor(t, "more attempts", func() bool { return lonely.JoinStatus().Attempts > attempts+3 })
	if msgs := w.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "no seed has answered") {
		t.Fatalf("warnings %q, want one that no seed has answered", msgs)
	}

	// A seed that keeps refusing (another gossip key): one error, after
	// warnAfter.
	seed := joiner(t, "seed", [][]byte{testKey(1)}, "")
	began = time.Now()
	refused, w := start("refused", seed.LocalAddr(), [][]byte{testKey(2)})
	waitFor(t, "an error", func() bool { return len(w.Messages()) > 0 })
	if waited := time.Since(began); waited < warnAfter {
		t.Fatalf("refusal logged as an error after %v, before %v", waited, warnAfter)
	}
	attempts = refused.JoinStatus().Attempts
	waitFor(t, "more attempts", func() bool { return refused.JoinStatus().Attempts > attempts+3 })
	if msgs := w.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0], "seeds refuse this node") {
		t.Fatalf("warnings %q, want one that the seeds refuse this node", msgs)
	}
}
