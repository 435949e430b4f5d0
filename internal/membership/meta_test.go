package membership

import (
	"errors"
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
