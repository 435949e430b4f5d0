package membership

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rotationNode is a member whose probe acks carry "name:step", so a test can
// wait until every member has heard encrypted acks from every other one
// since a step: proof that gossip flows both ways under the new keys.
type rotationNode struct {
	*Membership
	name string
	step atomic.Int32

	mu   sync.Mutex
	seen map[string]bool // "peer:step" payloads received
	min  int             // fewest alive members ever seen
}

func startRotationNode(t *testing.T, name string, keys [][]byte, join ...string) *rotationNode {
	t.Helper()
	n := &rotationNode{name: name, seen: map[string]bool{}, min: 1 << 30}
	m, err := New(Config{
		Name: name, BindAddr: "127.0.0.1:0", Join: join, Keys: keys, Tune: fast,
		RetryInterval: 20 * time.Millisecond, Logger: testLogger(t, name),
		AckPayload: func() []byte { return fmt.Appendf(nil, "%s:%d", name, n.step.Load()) },
		PeerPayload: func(b []byte) {
			n.mu.Lock()
			n.seen[string(b)] = true
			n.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.Membership = m
	t.Cleanup(func() { m.Shutdown() })
	return n
}

// watch records the fewest alive members n sees from now on.
func (n *rotationNode) watch(t *testing.T) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-n.Changed():
				alive := len(n.Alive())
				n.mu.Lock()
				n.min = min(n.min, alive)
				n.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { close(done); wg.Wait() })
}

func (n *rotationNode) heard(peer string, step int32) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.seen[fmt.Sprintf("%s:%d", peer, step)]
}

// settle moves every node to step and waits until each has received an ack
// from every other one tagged with it.
func settle(t *testing.T, nodes []*rotationNode, step int32) {
	t.Helper()
	for _, n := range nodes {
		n.step.Store(step)
	}
	waitFor(t, fmt.Sprintf("acks of step %d between all members", step), func() bool {
		for _, n := range nodes {
			for _, p := range nodes {
				if p != n && !n.heard(p.name, step) {
					return false
				}
			}
		}
		return true
	})
}

func TestMembership_KeyRotationLosesNoMember(t *testing.T) {
	old, next := testKey(1), testKey(2)
	rotate := map[string]struct{ install, use, remove func(*Membership) error }{
		"methods": {
			install: func(m *Membership) error { return m.InstallKey(next) },
			use:     func(m *Membership) error { return m.UseKey(next) },
			remove:  func(m *Membership) error { return m.RemoveKey(old) },
		},
		"reload": {
			install: func(m *Membership) error { return m.ReloadKeys([][]byte{old, next}) },
			use:     func(m *Membership) error { return m.ReloadKeys([][]byte{next, old}) },
			remove:  func(m *Membership) error { return m.ReloadKeys([][]byte{next}) },
		},
	}
	for name, r := range rotate {
		t.Run(name, func(t *testing.T) {
			a := startRotationNode(t, "a", [][]byte{old})
			nodes := []*rotationNode{a,
				startRotationNode(t, "b", [][]byte{old}, a.LocalAddr()),
				startRotationNode(t, "c", [][]byte{old}, a.LocalAddr()),
			}
			for _, n := range nodes {
				waitFor(t, n.name+" to see three members", func() bool { return len(n.Alive()) == 3 })
				n.watch(t)
			}
			settle(t, nodes, 1)

			steps := []struct {
				do   func(*Membership) error
				want [][]byte
			}{{r.install, [][]byte{old, next}}, {r.use, [][]byte{next, old}}, {r.remove, [][]byte{next}}}
			step := int32(1)
			for i, s := range steps {
				for _, n := range nodes {
					if err := s.do(n.Membership); err != nil {
						t.Fatalf("step %d on %s: %v", i+1, n.name, err)
					}
					if got := n.Keys(); !slices.EqualFunc(got, s.want, bytes.Equal) {
						t.Fatalf("step %d on %s: keys %v, want %v", i+1, n.name, keyIDs(got), keyIDs(s.want))
					}
					// Mixed keys across the cluster, half-way through a step.
					step++
					settle(t, nodes, step)
				}
			}
			for _, n := range nodes {
				n.mu.Lock()
				lowest := n.min
				n.mu.Unlock()
				if lowest < 3 {
					t.Errorf("%s saw only %d alive members during the rotation", n.name, lowest)
				}
				if c := n.Counts(); c != (Counts{Alive: 3}) {
					t.Errorf("%s counts %+v after the rotation", n.name, c)
				}
			}

			// The old key no longer opens the door; the new one does.
			stale := startRotationNode(t, "stale", [][]byte{old}, a.LocalAddr())
			waitFor(t, "the old-key node to be refused", func() bool { return stale.JoinStatus().State == JoinRefused })
			if err := stale.JoinStatus().Err; !errors.Is(err, ErrSeedsRefused) {
				t.Fatalf("refusal error %v", err)
			}
			if got := names(a.Members()); !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Fatalf("a lists %v after a node with the removed key tried to join", got)
			}
			fresh := startRotationNode(t, "fresh", [][]byte{next}, a.LocalAddr())
			waitFor(t, "a node with the new key to join", func() bool { return fresh.JoinStatus().State == JoinJoined })
		})
	}
}

func keyIDs(keys [][]byte) []string {
	var out []string
	for _, k := range keys {
		out = append(out, KeyID(k))
	}
	return out
}

func TestMembership_ReloadKeysRefusesUnsafeLists(t *testing.T) {
	old, next := []byte("old-key-0123456789abcdefghijklmn"), []byte("new-key-0123456789abcdefghijklmn")
	m, err := New(Config{Name: "a", BindAddr: "127.0.0.1:0", Keys: [][]byte{old}, Tune: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	for _, tc := range []struct {
		name string
		keys [][]byte
		want error
	}{
		{"empty list", nil, ErrNoKeys},
		{"short key", [][]byte{old, []byte("short")}, ErrBadKey},
		{"drops the primary", [][]byte{next}, ErrRemovePrimary},
		{"new key made primary at once", [][]byte{next, old}, ErrPrimaryNotInstalled},
	} {
		err := m.ReloadKeys(tc.keys)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), string(old)) || strings.Contains(err.Error(), string(next)) {
			t.Errorf("%s: error shows a key: %v", tc.name, err)
		}
		if got := m.Keys(); !slices.EqualFunc(got, [][]byte{old}, bytes.Equal) {
			t.Errorf("%s: refused reload changed the keys to %v", tc.name, keyIDs(got))
		}
	}
	if err := m.RemoveKey(old); !errors.Is(err, ErrRemovePrimary) {
		t.Errorf("RemoveKey(primary) = %v", err)
	}
	if err := m.UseKey(next); !errors.Is(err, ErrKeyNotInstalled) {
		t.Errorf("UseKey(not installed) = %v", err)
	}
	if err := m.RemoveKey(next); err != nil {
		t.Errorf("RemoveKey(not installed) = %v, want a no-op", err)
	}
	if err := m.InstallKey([]byte("short")); !errors.Is(err, ErrBadKey) {
		t.Errorf("InstallKey(short) = %v", err)
	}
	// The caller's slices are copied, not kept.
	k := bytes.Clone(next)
	if err := m.ReloadKeys([][]byte{old, k}); err != nil {
		t.Fatal(err)
	}
	k[0] ^= 0xff
	if got := m.Keys(); !slices.EqualFunc(got, [][]byte{old, next}, bytes.Equal) {
		t.Fatalf("keys %v after the caller changed its slice", keyIDs(got))
	}
}

func TestMembership_KeyOperationsNeedEncryption(t *testing.T) {
	m, err := New(Config{Name: "a", BindAddr: "127.0.0.1:0", Tune: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	if m.Keys() != nil {
		t.Errorf("keys %v on a plaintext node", m.Keys())
	}
	if err := m.ReloadKeys(nil); err != nil {
		t.Errorf("ReloadKeys(nil) on a plaintext node = %v, want a no-op", err)
	}
	for name, err := range map[string]error{
		"ReloadKeys": m.ReloadKeys([][]byte{testKey(1)}),
		"InstallKey": m.InstallKey(testKey(1)),
		"UseKey":     m.UseKey(testKey(1)),
		"RemoveKey":  m.RemoveKey(testKey(1)),
	} {
		if !errors.Is(err, ErrNotEncrypted) {
			t.Errorf("%s on a plaintext node = %v", name, err)
		}
	}
}

func TestMembership_RejectsBadKeyConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"both forms": {SecretKey: testKey(1), Keys: [][]byte{testKey(2)}},
		"short key":  {Keys: [][]byte{testKey(1), []byte("0123456789")}},
		"short one":  {SecretKey: []byte("0123456789")},
	} {
		cfg.Name, cfg.BindAddr = "x", "127.0.0.1:0"
		if m, err := New(cfg); err == nil {
			m.Shutdown()
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeyID(t *testing.T) {
	a, b := KeyID(testKey(1)), KeyID(testKey(2))
	if a == b || len(a) != 16 || a != KeyID(testKey(1)) {
		t.Fatalf("KeyID gave %q and %q", a, b)
	}
}
