package membership

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func parted(t *testing.T, name string, parts int, seed string) *Membership {
	t.Helper()
	m, err := New(Config{Name: name, BindAddr: "127.0.0.1:0", Join: []string{seed}, Partitions: parts, RESPAddr: "127.0.0.1:6379",
		RetryInterval: 20 * time.Millisecond, MaxRetryInterval: 100 * time.Millisecond, Logger: testLogger(t, name),
		Tune: func(c *memberlist.Config) { fast(c) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// Nodes of another partitioning cannot form one cluster: their tables
// would route the same key to different owners.
func TestMembership_AnotherPartitioningIsRefused(t *testing.T) {
	seed := parted(t, "seed", 4096, "")
	other := parted(t, "other", 2048, seed.LocalAddr())
	st := waitJoinState(t, other, JoinRefused)
	if !errors.Is(st.Err, ErrSeedsRefused) {
		t.Fatalf("join error %v, want ErrSeedsRefused", st.Err)
	}
	if len(seed.Alive()) != 1 {
		t.Fatalf("the seed admitted a node of another partitioning: %v", names(seed.Alive()))
	}
	same := parted(t, "same", 4096, seed.LocalAddr())
	waitFor(t, "a node of the same partitioning to join", func() bool { return len(seed.Alive()) == 2 })
	// What members publish reaches the others: age, table version, RESP.
	if err := same.SetTableVersion(7, time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the table version to spread", func() bool {
		for _, m := range seed.Alive() {
			if m.Name == "same" {
				return m.TableVersion == 7 && m.RESPAddr == "127.0.0.1:6379" && !m.Since.IsZero() && m.Since.After(seedSince(seed))
			}
		}
		return false
	})
}

func seedSince(m *Membership) time.Time {
	for _, x := range m.Alive() {
		if x.Name == m.cfg.Name {
			return x.Since
		}
	}
	return time.Time{}
}

// A node installs tables from several goroutines at once (pushes from the
// coordinator, pulls, its ring loop), each publishing its version;
// memberlist's UpdateNode reads the local node's state unlocked while
// another call writes it, so the calls must not overlap (found by the
// 12-node scale test in internal/clustertest under -race).
func TestMembership_ConcurrentPublishesDoNotRace(t *testing.T) {
	seed := parted(t, "seed", 4096, "")
	m := parted(t, "m", 4096, seed.LocalAddr())
	waitFor(t, "m to join", func() bool { return len(seed.Alive()) == 2 })
	var wg sync.WaitGroup
	for v := range uint64(8) {
		wg.Go(func() {
			if err := m.SetTableVersion(v+1, time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	final := m.table.Load()
	waitFor(t, "the last version to spread", func() bool {
		for _, x := range seed.Alive() {
			if x.Name == "m" {
				return x.TableVersion == final
			}
		}
		return false
	})
}
