package membership

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fast makes gossip quick for tests, yet slow to declare a member dead: a
// suspect has at least 600 ms (up to 6× more without confirmations) to
// refute, so a CPU-starved test machine does not lose members it should not.
func fast(c *memberlist.Config) {
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 80 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.SuspicionMult = 6
	c.TCPTimeout = time.Second
}

// freePort returns a loopback port free for TCP at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func start(t *testing.T, name, bind string, join ...string) *Membership {
	t.Helper()
	m, err := New(Config{Name: name, BindAddr: bind, GRPCAddr: "grpc-" + name, Join: join, RetryInterval: 50 * time.Millisecond, Tune: fast, Logger: testLogger(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func names(ms []Member) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func stateOf(m *Membership, name string) State {
	for _, x := range m.Members() {
		if x.Name == name {
			return x.State
		}
	}
	return 0
}

func TestMembership_JoinListMayNameSelfAndPeersNotUpYet(t *testing.T) {
	pa, pb := freePort(t), freePort(t)
	addrA, addrB := fmt.Sprintf("127.0.0.1:%d", pa), fmt.Sprintf("127.0.0.1:%d", pb)
	// Like every pod of a StatefulSet: the same list, self included, and the
	// peer starts later. A DNS name stands for the peer.
	join := []string{addrA, fmt.Sprintf("localhost:%d", pb)}
	a := start(t, "a", addrA, join...)
	if got := names(a.Alive()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("alone, a sees %v", got)
	}
	b := start(t, "b", addrB, join...)
	for _, m := range []*Membership{a, b} {
		waitFor(t, "both to see each other", func() bool { return slices.Equal(names(m.Alive()), []string{"a", "b"}) })
	}
	for _, mem := range a.Alive() {
		if mem.GRPCAddr != "grpc-"+mem.Name {
			t.Fatalf("metadata not carried: %+v", mem)
		}
	}
}

func TestMembership_LeaveIsLeftCrashIsDead(t *testing.T) {
	a := start(t, "a", "127.0.0.1:0")
	b := start(t, "b", "127.0.0.1:0", a.LocalAddr())
	c := start(t, "c", "127.0.0.1:0", a.LocalAddr())
	// Every node, b included: a node that sees nobody yet broadcasts its
	// leave to nobody.
	for _, m := range []*Membership{a, b, c} {
		waitFor(t, "three members", func() bool { return len(m.Alive()) == 3 })
	}

	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	b.Shutdown()
	waitFor(t, "b to be left", func() bool { return stateOf(a, "b") == StateLeft })

	c.Shutdown() // no leave message: a crash
	waitFor(t, "c to be dead", func() bool { return stateOf(a, "c") == StateDead })
	if got := names(a.Alive()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("alive = %v", got)
	}
	if got := names(a.Members()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("members = %v, departed nodes should stay listed within Linger", got)
	}
}

// A leaving node's mark must reach every peer even when gossip carries
// none of it: a peer that hears of the leave without the mark takes the
// node for dead (no warm hand-over, a merge on its return). Here gossip,
// probes and periodic syncs are off, so only the direct push can carry it.
func TestMembership_LeavingMarkReachesPeersWithoutGossip(t *testing.T) {
	a := startSilent(t, "a", nil)
	b := startSilent(t, "b", nil, a.LocalAddr())
	c := startSilent(t, "c", nil, a.LocalAddr(), b.LocalAddr())
	for _, m := range []*Membership{a, b, c} {
		waitFor(t, "three members", func() bool { return len(m.Alive()) == 3 })
	}

	before := time.Now()
	c.AnnounceLeaving(2 * time.Second)
	for _, m := range []*Membership{a, b} {
		waitFor(t, "a peer to list c as left", func() bool { return stateOf(m, "c") == StateLeft })
		if left, dead := m.Exits("c"); left.Before(before) || left.After(time.Now()) || !dead.IsZero() {
			t.Fatalf("Exits(c) = %v, %v; want a leave after %v and before now, no death", left, dead, before)
		}
	}
}

// A node whose leave message has not gone out yet, and whose peers all
// leave meanwhile (the whole cluster stopping), stops waiting as soon as it
// sees them leave: nobody is left to hear the message. Here a does not
// gossip, so its message never goes out; the peers' leaving marks reach it
// by their gossip. Before, a waited out its whole timeout and reported it.
func TestMembership_LeaveEndsWhenEveryPeerLeavesToo(t *testing.T) {
	a := startSilent(t, "a", nil)
	b := start(t, "b", "127.0.0.1:0", a.LocalAddr())
	c := start(t, "c", "127.0.0.1:0", a.LocalAddr(), b.LocalAddr())
	for _, m := range []*Membership{a, b, c} {
		waitFor(t, "three members", func() bool { return len(m.Alive()) == 3 })
	}
	t.Cleanup(a.listLeave.Wait) // memberlist's own wait, cut short by nothing

	const timeout = 5 * time.Second
	left := make(chan error, 1)
	start := time.Now()
	go func() { left <- a.Leave(timeout) }()
	waitFor(t, "a to announce its leave", func() bool { return stateOf(b, "a") == StateLeft })
	select {
	case err := <-left:
		t.Fatalf("a's Leave returned (%v) while b and c stayed", err)
	default:
	}
	b.AnnounceLeaving(time.Second)
	c.AnnounceLeaving(time.Second)
	select {
	case err := <-left:
		if err != nil {
			t.Fatalf("Leave: %v", err)
		}
		if took := time.Since(start); took >= timeout {
			t.Fatalf("Leave took %v: it waited out its timeout for peers that had left", took)
		}
	case <-time.After(2 * timeout):
		t.Fatal("Leave did not return")
	}
}

// startSilent starts a member with gossip, probes and periodic syncs off:
// only joins and direct pushes carry state to and from it. tune, if not
// nil, changes its config further.
func startSilent(t *testing.T, name string, tune func(*memberlist.Config), join ...string) *Membership {
	t.Helper()
	silent := func(c *memberlist.Config) {
		fast(c)
		c.GossipInterval, c.ProbeInterval, c.PushPullInterval = 0, 0, 0
		if tune != nil {
			tune(c)
		}
	}
	m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", GRPCAddr: "grpc-" + name, Join: join, RetryInterval: 50 * time.Millisecond, Tune: silent, Logger: testLogger(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

func TestMembership_ChangedIsSignalledWithoutBlocking(t *testing.T) {
	a := start(t, "a", "127.0.0.1:0")
	// Nobody drains Changed: joins must still complete.
	for i := range 3 {
		start(t, fmt.Sprintf("p%d", i), "127.0.0.1:0", a.LocalAddr())
	}
	waitFor(t, "four members", func() bool { return len(a.Alive()) == 4 })
	select {
	case <-a.Changed():
	default:
		t.Fatal("no change signalled")
	}
}

func TestMembership_RejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{BindAddr: "127.0.0.1:0"},
		{Name: "x", BindAddr: "nonsense"},
		{Name: "x", BindAddr: "127.0.0.1:0", Preset: "wan-ish"},
	} {
		if m, err := New(cfg); err == nil {
			m.Shutdown()
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

func TestMembership_JoinedWhenAPeerJoinsUs(t *testing.T) {
	pb := freePort(t)
	// a lists b as its seed, but b is not up; b then joins a by itself.
	// a's own retries are an hour apart: they must not be what marks it.
	a, err := New(Config{Name: "a", BindAddr: "127.0.0.1:0", Join: []string{fmt.Sprintf("127.0.0.1:%d", pb)}, RetryInterval: time.Hour, Tune: fast})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown() })
	select {
	case <-a.Joined():
		t.Fatal("joined before any peer")
	default:
	}
	start(t, "b", fmt.Sprintf("127.0.0.1:%d", pb), a.LocalAddr())
	select {
	case <-a.Joined():
	case <-time.After(10 * time.Second):
		t.Fatal("a did not count b's join as joined")
	}
}

func TestMembership_ProbeAcksCarryThePayloadWhenEncrypted(t *testing.T) {
	got := make(chan []byte, 100)
	mk := func(name, join string, payload string) *Membership {
		var seeds []string
		if join != "" {
			seeds = []string{join}
		}
		m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", Join: seeds, Tune: fast, SecretKey: testKey(1),
			AckPayload: func() []byte { return []byte(payload) },
			PeerPayload: func(b []byte) {
				select {
				case got <- b:
				default:
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m
	}
	a := mk("a", "", "from-a")
	mk("b", a.LocalAddr(), "from-b")
	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !seen["from-a"] || !seen["from-b"] {
		select {
		case b := <-got:
			seen[string(b)] = true
		case <-deadline:
			t.Fatalf("payloads seen: %v", seen)
		}
	}
}

func TestMembership_GossipKeyKeepsStrangersOut(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	mk := func(name string, k []byte, join ...string) *Membership {
		m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", Join: join, SecretKey: k, RetryInterval: 20 * time.Millisecond, Tune: fast})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Shutdown() })
		return m
	}
	a := mk("a", key)
	mk("b", key, a.LocalAddr())
	waitFor(t, "b to join with the shared key", func() bool { return len(a.Alive()) == 2 })
	c := mk("c", other, a.LocalAddr())
	waitFor(t, "c to be refused", func() bool { return c.JoinStatus().State == JoinRefused })
	if len(c.Alive()) > 1 || len(a.Alive()) > 2 {
		t.Fatalf("a node with another key joined: a sees %v, c sees %v", names(a.Alive()), names(c.Alive()))
	}
}

func TestMembership_AckPayloadsOnlyOverEncryptedGossip(t *testing.T) {
	ack := func() []byte { return []byte("x") }
	peer := func([]byte) {}
	for _, tc := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"plaintext", Config{}, false},
		{"encrypted", Config{Keys: [][]byte{testKey(1)}}, true},
		{"encrypted, unverified incoming", Config{Keys: [][]byte{testKey(1)}, Tune: func(c *memberlist.Config) { c.GossipVerifyIncoming = false }}, false},
	} {
		cfg := tc.cfg
		cfg.Name, cfg.BindAddr, cfg.AckPayload, cfg.PeerPayload = "a", "127.0.0.1:0", ack, peer
		m := &Membership{cfg: cfg, log: slog.New(slog.DiscardHandler)}
		mc, err := m.memberlistConfig()
		if err != nil {
			t.Fatal(err)
		}
		if got := mc.Ping != nil; got != tc.want {
			t.Errorf("%s: payloads exchanged = %v, want %v", tc.name, got, tc.want)
		}
	}
}
