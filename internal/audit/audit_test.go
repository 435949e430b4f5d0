package audit_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/auth"
)

var hmacKey = []byte("0123456789abcdef0123456789abcdef")

type line struct {
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	Auth      string    `json:"auth"`
	Remote    string    `json:"remote"`
	Method    string    `json:"method"`
	Namespace string    `json:"namespace"`
	KeyHMAC   string    `json:"key_hmac"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason"`
}

func readLines(t *testing.T, data []byte) []line {
	t.Helper()
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func TestLog_WritesOneJSONLinePerRecordWithoutTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{Key: hmacKey})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 10, 4, 5, 123456000, time.UTC)
	const secretKey = "user:4711:credit-card"
	l.Write(audit.Record{
		Time: at, Principal: auth.Principal{Name: "web", Kind: auth.Token}, Remote: "10.0.0.7:51234",
		Method: "/ringcache.v1.Cache/Set", Namespace: "users", Key: secretKey,
		Reason: `principal "web" may not write namespace "users"`,
	})
	l.Write(audit.Record{Principal: auth.Principal{Name: "ops", Kind: auth.Certificate}, Method: "/ringcache.v1.Admin/JournalFlush", Allowed: true})
	l.Write(audit.Record{Principal: auth.Principal{Name: "ringcache-1", Kind: auth.Certificate, Node: true}, Method: "/ringcache.v1.Peer/Forward", Allowed: true})
	l.Write(audit.Record{Method: "/ringcache.v1.Cache/Get", Namespace: "users", Key: secretKey})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Not "4711" alone: records stamped with the wall clock may hold it
	// in their nanoseconds.
	if bytes.Contains(data, []byte("user:4711")) || bytes.Contains(data, []byte("credit")) {
		t.Fatalf("the key's text is in the audit log:\n%s", data)
	}
	lines := readLines(t, data)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), data)
	}
	want := line{
		Time: at, Principal: "web", Auth: "token", Remote: "10.0.0.7:51234", Method: "/ringcache.v1.Cache/Set",
		Namespace: "users", KeyHMAC: audit.HashKey(hmacKey, secretKey), Decision: "deny",
		Reason: `principal "web" may not write namespace "users"`,
	}
	if lines[0] != want {
		t.Errorf("line 1 =\n %+v\nwant\n %+v", lines[0], want)
	}
	if len(want.KeyHMAC) != 32 {
		t.Errorf("key_hmac %q is not 128 bits in hex", want.KeyHMAC)
	}
	if l := lines[1]; l.Decision != "allow" || l.Auth != "certificate" || l.KeyHMAC != "" || l.Time.IsZero() {
		t.Errorf("admin line = %+v, want allow, certificate, no key, a time", l)
	}
	if lines[2].Auth != "node-certificate" {
		t.Errorf("peer line auth = %q, want node-certificate", lines[2].Auth)
	}
	if l := lines[3]; l.Auth != "anonymous" || l.Principal != "" || l.KeyHMAC != lines[0].KeyHMAC {
		t.Errorf("anonymous line = %+v; want the same key_hmac as line 1 for the same key", l)
	}
	if s := l.Stats(); s.Written != 4 || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats = %+v", s)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestHashKey_CorrelatesOnlyUnderTheSameAuditKey(t *testing.T) {
	other := []byte("another-key-of-sixteen-bytes")
	if audit.HashKey(hmacKey, "k") != audit.HashKey(hmacKey, "k") {
		t.Error("one key hashes differently under one audit key")
	}
	if audit.HashKey(hmacKey, "k") == audit.HashKey(other, "k") {
		t.Error("one key hashes the same under two audit keys")
	}
	if audit.HashKey(hmacKey, "k") == audit.HashKey(hmacKey, "k2") {
		t.Error("two keys hash the same")
	}
}

// blockingWriter blocks every Write until released: a disk that cannot
// keep up.
type blockingWriter struct {
	entered chan struct{} // closed at the first Write
	once    sync.Once
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestLog_WriteNeverBlocksAndDropsWhatTheDiskCannotTake(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := audit.New(w, audit.Options{Key: hmacKey, Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Method: "first"})
	<-w.entered // the writer is stuck on the disk
	start := time.Now()
	for i := range 1000 {
		l.Write(audit.Record{Method: fmt.Sprint(i)})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 writes against a stuck disk took %s", d)
	}
	if s := l.Stats(); s.Dropped != 990 {
		t.Errorf("stats = %+v, want 990 dropped: the queue holds 10", s)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	lines := readLines(t, w.buf.Bytes())
	if uint64(len(lines)) != s.Written || s.Written != 11 || s.Written+s.Dropped != 1001 {
		t.Errorf("%d lines, stats %+v: want every record written or counted as dropped", len(lines), s)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n <= 2 {
		return 0, errors.New("no space left on device")
	}
	return len(p), nil
}

func TestLog_WriteErrorsAreCountedAndLoggedOnce(t *testing.T) {
	var logs bytes.Buffer
	w := &failingWriter{}
	l, err := audit.New(w, audit.Options{Key: hmacKey, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		l.Write(audit.Record{Method: "m"})
		waitFor(t, func() bool { s := l.Stats(); return s.Written+s.Failed == i+1 })
	}
	l.Close()
	s := l.Stats()
	if s.Failed != 2 || s.Written != 1 {
		t.Errorf("stats = %+v, want 2 failed (the disk was full twice) and 1 written after", s)
	}
	if n := strings.Count(logs.String(), "audit log write failed"); n != 1 {
		t.Errorf("write failure logged %d times, want once per distinct error:\n%s", n, logs.String())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLog_ConcurrentWritersAndCloseFlushes(t *testing.T) {
	var buf syncBuffer
	l, err := audit.New(&buf, audit.Options{Key: hmacKey, Buffer: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.Write(audit.Record{Principal: auth.Principal{Name: fmt.Sprint(g), Kind: auth.Token}, Method: "m", Key: fmt.Sprint(i), Allowed: true})
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Method: "after close"}) // dropped, no panic
	lines := readLines(t, buf.Bytes())
	if len(lines) != 8000 {
		t.Errorf("%d lines after Close, want all 8000", len(lines))
	}
	if s := l.Stats(); s.Written != 8000 || s.Dropped != 1 {
		t.Errorf("stats = %+v, want 8000 written and the write after Close dropped", s)
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Bytes()
}

func TestLog_ReopenFollowsARotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l, err := audit.Open(path, audit.Options{Key: hmacKey})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Method: "before"})
	waitFor(t, func() bool { return l.Stats().Written == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write(audit.Record{Method: "after"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Reopen after Close = %v, want ErrClosed", err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"before"`) || strings.Contains(string(old), `"after"`) || !strings.Contains(string(cur), `"after"`) {
		t.Errorf("rotated file %q, new file %q", old, cur)
	}
}

func TestNew_RejectsAShortKey(t *testing.T) {
	if _, err := audit.New(io.Discard, audit.Options{Key: []byte("short")}); err == nil {
		t.Error("New accepted a 5-byte HMAC key")
	}
}

func BenchmarkWrite(b *testing.B) {
	l, err := audit.New(io.Discard, audit.Options{Key: hmacKey})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := audit.Record{Principal: auth.Principal{Name: "web", Kind: auth.Token}, Method: "/ringcache.v1.Cache/Get", Namespace: "users", Key: "user:42", Allowed: true}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Write(r)
		}
	})
	b.ReportMetric(float64(l.Stats().Dropped)/float64(b.N), "dropped/op")
}
