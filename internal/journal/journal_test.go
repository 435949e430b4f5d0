package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/testclock"
)

func TestJournal_ReplayAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n1", "journal.db")
	clk := testclock.New()
	j, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{
		set("users", "1", "alice", 10),
		set("users", "2", "", 11), // empty, not nil
		{Namespace: "users", Key: "3", Delete: true, Version: 12},
		set("orders", "k\x00with-nul", "\x00\xff binary", 13),
	}
	for i := range want {
		clk.Advance(time.Second)
		mustAppend(t, j, want[i])
		want[i].Appended = clk.Now().UTC()
	}
	if err := j.Retry(want[1], errors.New("db down")); err != nil {
		t.Fatal(err)
	}
	want[1].Attempts, want[1].LastError = 1, "db down"
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("journal file mode = %v, %v; want 0600", info.Mode(), err)
	}

	j = openAt(t, path, Options{})
	got, err := j.Oldest(100)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen Oldest =\n%#v\nwant\n%#v", got, want)
	}
	for _, w := range want {
		if r := mustPending(t, j, w.Namespace, w.Key); !reflect.DeepEqual(r, w) {
			t.Errorf("Pending(%s) = %#v, want %#v", w.Key, r, w)
		}
	}
	s := mustStats(t, j)
	if s.Pending != 4 || s.PendingBytes != 48 || !s.Oldest.Equal(want[0].Appended) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestJournal_CoalescesPerKeyLatestWins(t *testing.T) {
	clk := testclock.New()
	j := openTest(t, Options{Now: clk.Now})
	const n, k = 60, 7
	first, last := map[string]time.Time{}, map[string]int{}
	for i := range n {
		key := fmt.Sprint(i % k)
		mustAppend(t, j, set("ns", key, fmt.Sprintf("v%d", i), uint64(i+1)))
		if _, ok := first[key]; !ok {
			first[key] = clk.Now().UTC()
		}
		last[key] = i
		clk.Advance(time.Millisecond)
	}
	s := mustStats(t, j)
	if s.Pending != k || s.Appends != n || s.Coalesced != n-k {
		t.Fatalf("Stats = %+v; want %d pending, %d appends, %d coalesced", s, k, n, n-k)
	}
	for key, i := range last {
		r := mustPending(t, j, "ns", key)
		if string(r.Value) != fmt.Sprintf("v%d", i) || r.Version != uint64(i+1) || !r.Appended.Equal(first[key]) {
			t.Errorf("key %s: %q v%d appended %v; want v%d appended %v (the first write's)",
				key, r.Value, r.Version, r.Appended, i+1, first[key])
		}
	}
}

func TestJournal_OlderVersionIsSuperseded(t *testing.T) {
	j := openTest(t, Options{})
	mustAppend(t, j, set("ns", "k", "new", 5))
	if err := j.Append(context.Background(), set("ns", "k", "old", 4)); !errors.Is(err, ErrSuperseded) {
		t.Fatalf("older version: %v, want ErrSuperseded", err)
	}
	if r := mustPending(t, j, "ns", "k"); string(r.Value) != "new" || r.Version != 5 {
		t.Fatalf("pending = %q v%d; want new v5", r.Value, r.Version)
	}
	mustAppend(t, j, set("ns", "k", "same", 5)) // equal versions replace
	if r := mustPending(t, j, "ns", "k"); string(r.Value) != "same" {
		t.Fatalf("pending = %q; an equal version should replace", r.Value)
	}
	if s := mustStats(t, j); s.Coalesced != 2 || s.Appends != 3 || s.Pending != 1 {
		t.Fatalf("Stats = %+v", s)
	}
}

func TestJournal_AckKeepsNewerVersion(t *testing.T) {
	j := openTest(t, Options{})
	mustAppend(t, j, set("ns", "a", "a1", 1))
	mustAppend(t, j, set("ns", "b", "b1", 1))
	taken, err := j.Oldest(10) // the flusher takes both...
	if err != nil || len(taken) != 2 {
		t.Fatalf("Oldest = %v, %v", taken, err)
	}
	mustAppend(t, j, set("ns", "a", "a2", 2)) // ...a newer write of a arrives...
	if err := j.Ack(taken); err != nil {      // ...and the flusher acks what it wrote.
		t.Fatal(err)
	}
	if _, ok, _ := j.Pending("ns", "b"); ok {
		t.Error("b still pending after its Ack")
	}
	if r := mustPending(t, j, "ns", "a"); string(r.Value) != "a2" {
		t.Errorf("a = %q; the newer version must stay pending", r.Value)
	}
	if s := mustStats(t, j); s.Pending != 1 || s.PendingBytes != int64(len("ns")+len("a")+len("a2")) {
		t.Errorf("Stats = %+v", s)
	}
	if err := j.Ack(taken); err != nil { // acking again is harmless
		t.Fatal(err)
	}
}

func TestJournal_RetryCountsAttemptsInPlace(t *testing.T) {
	j := openTest(t, Options{})
	for _, k := range []string{"a", "b", "c"} {
		mustAppend(t, j, set("ns", k, k, 1))
	}
	b := mustPending(t, j, "ns", "b")
	for i := range 3 {
		if err := j.Retry(b, fmt.Errorf("attempt %d: connection refused", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	got := mustPending(t, j, "ns", "b")
	if got.Attempts != 3 || got.LastError != "attempt 3: connection refused" {
		t.Errorf("after 3 retries: attempts %d, last error %q", got.Attempts, got.LastError)
	}
	if keys := oldestKeys(t, j); keys != "a b c" {
		t.Errorf("order after Retry = %s; want a b c", keys)
	}
	// A newer write resets attempts; a Retry of the older version is ignored.
	mustAppend(t, j, set("ns", "b", "b2", 2))
	if err := j.Retry(b, errors.New("late")); err != nil {
		t.Fatal(err)
	}
	if got := mustPending(t, j, "ns", "b"); got.Attempts != 0 || got.LastError != "" {
		t.Errorf("newer write: attempts %d, last error %q; want 0, \"\"", got.Attempts, got.LastError)
	}
}

func TestJournal_OldestIsFIFO(t *testing.T) {
	clk := testclock.New()
	j := openTest(t, Options{Now: clk.Now})
	if s := mustStats(t, j); !s.Oldest.IsZero() {
		t.Errorf("empty journal Oldest = %v", s.Oldest)
	}
	t0 := clk.Now().UTC()
	for i, k := range []string{"c", "a", "d", "b"} {
		mustAppend(t, j, set("ns", k, k, uint64(i+1)))
		clk.Advance(time.Second)
	}
	mustAppend(t, j, set("ns", "c", "c2", 9)) // replacing keeps c first
	if keys := oldestKeys(t, j); keys != "c a d b" {
		t.Fatalf("Oldest = %s; want c a d b", keys)
	}
	if s := mustStats(t, j); !s.Oldest.Equal(t0) {
		t.Errorf("Stats.Oldest = %v; want %v", s.Oldest, t0)
	}
	two, _ := j.Oldest(2)
	if err := j.Ack(two); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, set("ns", "c", "c3", 10)) // c comes back at the tail
	if keys := oldestKeys(t, j); keys != "d b c" {
		t.Fatalf("Oldest = %s; want d b c", keys)
	}
	if s := mustStats(t, j); !s.Oldest.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("Stats.Oldest = %v; want %v", s.Oldest, t0.Add(2*time.Second))
	}
	if rs, err := j.Oldest(0); err != nil || len(rs) != 0 {
		t.Errorf("Oldest(0) = %v, %v", rs, err)
	}
}

func oldestKeys(t *testing.T, j *Journal) string {
	t.Helper()
	rs, err := j.Oldest(100)
	if err != nil {
		t.Fatal(err)
	}
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += " "
		}
		s += r.Key
	}
	return s
}

func TestJournal_AppendRespectsCancelledContext(t *testing.T) {
	j := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.Append(ctx, set("ns", "k", "v", 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with cancelled ctx = %v; want context.Canceled", err)
	}
	if _, ok, _ := j.Pending("ns", "k"); ok {
		t.Fatal("a cancelled Append stored its record")
	}
	// Cancelled while queued behind other Appends: either it was committed
	// (nil) or nothing was stored (ctx.Err()), never both.
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Go(func() { mustAppend(t, j, set("ns", fmt.Sprintf("load-%d", g), "v", 1)) })
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Microsecond)
	defer cancel()
	err := j.Append(ctx, set("ns", "k2", "v", 1))
	wg.Wait()
	t.Logf("cancelled while queued: %v", err)
	_, ok, _ := j.Pending("ns", "k2")
	if (err == nil) != ok || (err != nil && !errors.Is(err, context.DeadlineExceeded)) {
		t.Fatalf("Append = %v, stored = %v", err, ok)
	}
}

func TestJournal_ConcurrentAppendsShareCommits(t *testing.T) {
	j := openTest(t, Options{})
	const writers, each = 50, 20
	before := commits(t, j)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				mustAppend(t, j, set("ns", fmt.Sprintf("%d-%d", g, i), "v", 1))
			}
		})
	}
	wg.Wait()
	n := commits(t, j) - before
	t.Logf("%d appends in %d bbolt commits (%.1f appends per fsync)", writers*each, n, float64(writers*each)/float64(n))
	if n >= writers*each/2 {
		t.Errorf("%d commits for %d appends: group commit is not batching", n, writers*each)
	}
	if s := mustStats(t, j); s.Pending != writers*each {
		t.Errorf("Pending = %d", s.Pending)
	}
}

func TestJournal_SecondOpenIsLocked(t *testing.T) {
	j := openTest(t, Options{})
	start := time.Now()
	_, err := Open(j.Path(), Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v; want ErrLocked", err)
	}
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestJournal_CallsAfterCloseFail(t *testing.T) {
	j := openTest(t, Options{})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(context.Background(), set("ns", "k", "v", 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append = %v", err)
	}
	if _, _, err := j.Pending("ns", "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Pending = %v", err)
	}
	if err := j.Ack([]Record{{Namespace: "ns", Key: "k"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack = %v", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestJournal_RejectsInvalidRecords(t *testing.T) {
	j := openTest(t, Options{})
	for name, r := range map[string]Record{
		"empty namespace":   {Key: "k", Value: []byte("v")},
		"NUL in namespace":  {Namespace: "a\x00b", Key: "k"},
		"empty key":         {Namespace: "ns"},
		"delete with value": {Namespace: "ns", Key: "k", Delete: true, Value: []byte("v")},
		"key too long":      {Namespace: "ns", Key: string(make([]byte, 40000))},
	} {
		if err := j.Append(context.Background(), r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Append = %v; want ErrInvalid", name, err)
		}
	}
}

func TestJournal_MaxVersionCoversPendingNotDeadLetters(t *testing.T) {
	j := openTest(t, Options{})
	if v, err := j.MaxVersion(); err != nil || v != 0 {
		t.Fatalf("empty journal: %d, %v", v, err)
	}
	mustAppend(t, j, set("ns", "a", "v", 7))
	mustAppend(t, j, set("ns", "b", "v", 42))
	mustAppend(t, j, set("ns", "c", "v", 3))
	r := mustPending(t, j, "ns", "b")
	if err := j.Bury(r, errors.New("rejected")); err != nil {
		t.Fatal(err)
	}
	if v, err := j.MaxVersion(); err != nil || v != 7 {
		t.Fatalf("MaxVersion = %d, %v; want 7: the dead letter's 42 must not seed the clock", v, err)
	}
}
