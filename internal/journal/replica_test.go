package journal

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ringcache/ringcache/internal/testclock"
)

// openReplicaTest is openTest that also checks, at cleanup, that the
// replica counters equal what the replica buckets hold and that no origin
// bucket is empty.
func openReplicaTest(tb testing.TB, opts Options) *Journal {
	tb.Helper()
	j := openTest(tb, opts)
	tb.Cleanup(func() {
		if err := checkReplicaInvariants(j); err != nil && !errors.Is(err, ErrClosed) {
			tb.Errorf("replica invariants at cleanup: %v", err)
		}
	})
	return j
}

func checkReplicaInvariants(j *Journal) error {
	return j.view(func(tx *bolt.Tx) error {
		c, err := readRepCounters(tx)
		if err != nil {
			return err
		}
		var n, size uint64
		rb := tx.Bucket(bucketReplicas)
		err = rb.ForEachBucket(func(name []byte) error {
			empty := true
			err := rb.Bucket(name).ForEach(func(k, v []byte) error {
				empty = false
				r, _, err := decode(v)
				if err != nil {
					return fmt.Errorf("copy %q of %s: %w", k, originOf(name), err)
				}
				n++
				size += uint64(r.size())
				return nil
			})
			if err == nil && empty {
				err = fmt.Errorf("origin bucket %s is empty", originOf(name))
			}
			return err
		})
		if err != nil {
			return err
		}
		if c.pending != n || c.bytes != size {
			return fmt.Errorf("replica counters say %d copies, %d bytes; buckets hold %d, %d bytes", c.pending, c.bytes, n, size)
		}
		return nil
	})
}

var (
	o1 = Origin{Node: "n1", ID: "aaaa"}
	o2 = Origin{Node: "n2", ID: "bbbb"}
)

func store(rs ...Record) []ReplicaOp {
	ops := make([]ReplicaOp, len(rs))
	for i, r := range rs {
		ops[i] = ReplicaOp{Record: r}
	}
	return ops
}

func drop(ns, key string, version uint64) ReplicaOp {
	return ReplicaOp{Record: Record{Namespace: ns, Key: key, Version: version}, Drop: true}
}

func mustApply(tb testing.TB, j *Journal, o Origin, ops []ReplicaOp) ReplicaResult {
	tb.Helper()
	res, err := j.ApplyReplica(o, ops)
	if err != nil {
		tb.Fatalf("ApplyReplica(%s): %v", o, err)
	}
	for i, r := range res.Refused {
		if r != nil {
			tb.Fatalf("ApplyReplica(%s): op %d refused: %v", o, i, r)
		}
	}
	return res
}

func replicaVersion(tb testing.TB, j *Journal, ns, key string, include func(Origin) bool) (uint64, Origin) {
	tb.Helper()
	r, o, ok, err := j.ReplicaPending(ns, key, include)
	if err != nil {
		tb.Fatal(err)
	}
	if !ok {
		return 0, Origin{}
	}
	return r.Version, o
}

func all(Origin) bool { return true }

func TestReplica_CopiesKeepTheNewestVersionAndDropOnlyFlushedOnes(t *testing.T) {
	j := openReplicaTest(t, Options{})
	mustApply(t, j, o1, store(set("orders", "a", "a5", 5), set("orders", "b", "b5", 5)))
	mustApply(t, j, o1, store(set("orders", "a", "a3", 3))) // older: moot
	mustApply(t, j, o2, store(set("orders", "a", "a7", 7)))

	if v, o := replicaVersion(t, j, "orders", "a", all); v != 7 || o != o2 {
		t.Fatalf("newest copy of a = v%d from %s, want v7 from %s", v, o, o2)
	}
	only1 := func(o Origin) bool { return o == o1 }
	if v, _ := replicaVersion(t, j, "orders", "a", only1); v != 5 {
		t.Fatalf("copy of a from %s = v%d, want v5 (an older copy never replaces a newer one)", o1, v)
	}
	if _, ok, _ := j.Pending("orders", "a"); ok {
		t.Fatal("a copy is visible as the node's own pending write")
	}

	// The origin flushed a at v4 (older than the copy) and b at v6 (newer).
	mustApply(t, j, o1, []ReplicaOp{drop("orders", "a", 4), drop("orders", "b", 6), drop("orders", "zz", 9)})
	if v, _ := replicaVersion(t, j, "orders", "a", only1); v != 5 {
		t.Fatalf("after a drop at v4, copy of a = v%d, want v5 kept", v)
	}
	if v, _ := replicaVersion(t, j, "orders", "b", all); v != 0 {
		t.Fatalf("after a drop at v6, copy of b = v%d, want none", v)
	}
	s, err := j.ReplicaStats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending != 2 || s.Bytes != int64(2*len("orders")+2*len("a")+2*len("a5")) || len(s.Origins) != 2 {
		t.Fatalf("ReplicaStats = %+v, want 2 copies of 2 origins", s)
	}
	if own := mustStats(t, j); own.Pending != 0 {
		t.Fatalf("own pending = %d, want 0: copies are counted apart", own.Pending)
	}

	mustApply(t, j, o1, []ReplicaOp{drop("orders", "a", 5)})
	s, _ = j.ReplicaStats()
	if s.Pending != 1 || len(s.Origins) != 1 || s.Origins[0].Origin != o2 {
		t.Fatalf("after dropping o1's last copy, ReplicaStats = %+v; want o2's bucket alone", s)
	}
}

func TestReplica_CopiesAreBoundedApartFromOwnWrites(t *testing.T) {
	j := openReplicaTest(t, Options{MaxPending: 2})
	mustAppend(t, j, set("orders", "own1", "x", 1))
	mustAppend(t, j, set("orders", "own2", "x", 1))
	res, err := j.ApplyReplica(o1, store(set("orders", "a", "x", 1), set("orders", "b", "x", 1), set("orders", "c", "x", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused[0] != nil || res.Refused[1] != nil || !errors.Is(res.Refused[2], ErrFull) {
		t.Fatalf("Refused = %v, want only the third copy refused with ErrFull", res.Refused)
	}
	// A newer copy of a stored key still fits.
	mustApply(t, j, o1, store(set("orders", "a", "y", 2)))
	if v, _ := replicaVersion(t, j, "orders", "c", all); v != 0 {
		t.Fatal("the refused copy was stored")
	}
}

func TestReplica_ConcurrentAppliesShareOneCommit(t *testing.T) {
	const n = 20
	j := openReplicaTest(t, Options{})
	// Hold the committer inside a transaction, queue n applies behind it,
	// then let it go: the n must share the next commit.
	release := make(chan struct{})
	holding := make(chan struct{})
	hold := &appendReq{done: make(chan struct{}), apply: func(*bolt.Tx) error {
		close(holding)
		<-release
		return nil
	}}
	go func() { _ = j.submit(hold) }()
	<-holding
	before := commits(t, j)
	results := make([]ReplicaResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = mustApply(t, j, o1, store(set("orders", fmt.Sprintf("k%02d", i), "v", 1)))
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(j.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d applies queued", len(j.reqs), n)
		}
		time.Sleep(time.Millisecond) // polling the queue, not waiting for an effect
	}
	close(release)
	wg.Wait()
	if got := commits(t, j) - before; got != 2 {
		t.Fatalf("%d commits for the held one and %d queued applies, want 2", got, n)
	}
	for i, r := range results {
		if r.Commit != results[0].Commit {
			t.Fatalf("apply %d committed in transaction %d, apply 0 in %d: want one shared commit", i, r.Commit, results[0].Commit)
		}
	}
}

func TestReplica_AdoptTakesCopiesOverPastTheBounds(t *testing.T) {
	clk := testclock.New()
	j := openReplicaTest(t, Options{MaxPending: 2, Now: clk.Now})
	mustAppend(t, j, set("orders", "own", "mine", 9))
	mustAppend(t, j, set("orders", "b", "b-own", 20)) // newer than o1's copy of b
	mustApply(t, j, o1, store(set("orders", "a", "a5", 5), set("orders", "b", "b5", 5)))
	copies, err := j.ReplicaCopies(o1, "", "", 10)
	if err != nil || len(copies) != 2 {
		t.Fatalf("ReplicaCopies = %d, %v; want 2", len(copies), err)
	}
	adopted, err := j.Adopt(o1, copies) // a and b
	if err != nil {
		t.Fatal(err)
	}
	if len(adopted) != 1 || adopted[0].Key != "a" {
		t.Fatalf("adopted %v, want only a (own b is newer)", adopted)
	}
	if r := mustPending(t, j, "orders", "a"); string(r.Value) != "a5" || r.Version != 5 {
		t.Fatalf("pending a = %+v, want the adopted copy", r)
	}
	if r := mustPending(t, j, "orders", "b"); r.Version != 20 {
		t.Fatalf("pending b = v%d, want own v20 kept", r.Version)
	}
	if st := mustStats(t, j); st.Pending != 3 {
		t.Fatalf("own pending = %d, want 3 (adoption passes max_pending 2)", st.Pending)
	}
	if left, _ := j.ReplicaCopies(o1, "", "", 10); len(left) != 0 {
		t.Fatalf("copies of %s left = %v, want none", o1, left)
	}
	if s, _ := j.ReplicaStats(); s.Pending != 0 || len(s.Origins) != 0 {
		t.Fatalf("ReplicaStats = %+v, want no copies (b's older copy is dropped too)", s)
	}
	// Adopting from no origin (a handover) stores only.
	if _, err := j.Adopt(Origin{}, []Record{set("orders", "h", "handed", 3)}); err != nil {
		t.Fatal(err)
	}
	mustPending(t, j, "orders", "h")
}

func TestReplica_IDIsKeptWithTheFile(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(filepath.Join(dir, "a.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := j.ID()
	if err != nil || len(id) != 2*replicaIDBytes {
		t.Fatalf("ID = %q, %v", id, err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openAt(t, filepath.Join(dir, "a.db"), Options{})
	if again, _ := j.ID(); again != id {
		t.Fatalf("ID after reopen = %q, want %q", again, id)
	}
	other := openAt(t, filepath.Join(dir, "b.db"), Options{})
	if oid, _ := other.ID(); oid == id {
		t.Fatal("two journal files got the same ID")
	}
}

func TestReplica_BadOriginsAreInvalid(t *testing.T) {
	j := openReplicaTest(t, Options{})
	for _, o := range []Origin{{}, {Node: "n1"}, {Node: "n\x001", ID: "x"}} {
		if _, err := j.ApplyReplica(o, store(set("orders", "a", "x", 1))); !errors.Is(err, ErrInvalid) {
			t.Errorf("ApplyReplica(%q) = %v, want ErrInvalid", o.String(), err)
		}
	}
	if _, err := j.ApplyReplica(o1, store(Record{Namespace: "orders"})); !errors.Is(err, ErrInvalid) {
		t.Errorf("a copy without a key = %v, want ErrInvalid", err)
	}
}

func TestJournal_ScanVisitsEveryPendingRecordInPages(t *testing.T) {
	j := openReplicaTest(t, Options{})
	for i := range 7 {
		mustAppend(t, j, set("orders", fmt.Sprintf("k%d", i), "v", uint64(i+1)))
	}
	var seen []string
	var after uint64
	for {
		page, next, err := j.Scan(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if next <= after {
			t.Fatalf("Scan did not advance: %d → %d", after, next)
		}
		for _, r := range page {
			seen = append(seen, r.Key)
		}
		after = next
		if len(seen) == 3 { // a write between pages replaces k0: its place is kept
			mustAppend(t, j, set("orders", "k0", "v2", 100))
		}
	}
	if fmt.Sprint(seen) != "[k0 k1 k2 k3 k4 k5 k6]" {
		t.Fatalf("Scan saw %v", seen)
	}
}
