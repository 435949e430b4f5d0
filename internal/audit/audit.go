// Package audit writes the audit log (ringcached --audit-log FILE): one JSON
// line per audited call with its time, principal, remote address, method,
// namespace, a keyed hash of the key, the decision and its reason.
//
// The guarantees: no key or value text is ever written — a key appears
// only as HMAC-SHA256(audit key, key) truncated to 128 bits, so lines about
// one key can be correlated (across the cluster when every node has the
// same audit key, see LoadKey) while the key cannot be read back; Write
// never blocks a request: records queue in a bounded buffer, one goroutine
// writes them, and when the disk cannot keep up records are dropped and
// counted (Stats) rather than delaying calls; Close writes what is queued.
//
// A line:
//
//	{"time":"2026-11-02T10:04:05.123456Z","principal":"web","auth":"token","remote":"10.0.0.7:51234",
//	 "method":"/ringcache.v1.Cache/Set","namespace":"users","key_hmac":"5f0c…","decision":"deny",
//	 "reason":"principal \"web\" may not write namespace \"users\""}
package audit

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
)

// DefaultBuffer is the number of records queued when Options.Buffer is zero.
const DefaultBuffer = 8192

// hashBytes is how much of the HMAC a line keeps: 128 bits.
const hashBytes = 16

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("audit log closed")

// Record is one audited call. Reason must not contain key or value text
// (auth's error messages do not).
type Record struct {
	Time      time.Time // zero: when Write is called
	Principal auth.Principal
	Remote    string // the caller's address
	Method    string // e.g. /ringcache.v1.Cache/Set, or a RESP command
	Namespace string
	Key       string // hashed, never written; "" when the call has no key
	Allowed   bool
	Reason    string // why it was denied, or "" when allowed
}

// Options tunes a Log.
type Options struct {
	// Key is the HMAC key of key hashes (LoadKey); at least 16 bytes.
	Key []byte
	// Buffer is how many records may wait for the disk before Write drops
	// them; zero means DefaultBuffer.
	Buffer int
	// Logger receives write errors, once per distinct error; nil discards.
	Logger *slog.Logger
	// Now is the clock of records without a time; nil means time.Now.
	Now func() time.Time
}

// Stats counts records.
type Stats struct {
	Written uint64 // handed to the file
	Dropped uint64 // not queued: the buffer was full, or the log closed
	Failed  uint64 // lost to a write error
}

// Log is an audit log. It is safe for concurrent use.
type Log struct {
	o    Options
	ch   chan Record
	done chan struct{}
	log  *slog.Logger

	mu     sync.RWMutex // Write holds it shared, Close exclusively; never held during I/O
	closed bool

	wmu  sync.Mutex // the writer goroutine and Reopen
	file *os.File   // nil when writing to an io.Writer
	path string
	out  io.Writer
	w    *bufio.Writer

	written, dropped, failed atomic.Uint64
}

// Open appends to the file at path (created with mode 0600).
func Open(path string, o Options) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l, err := newLog(f, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.file, l.path = f, path
	return l, nil
}

// New writes to w; Close does not close it.
func New(w io.Writer, o Options) (*Log, error) { return newLog(w, o) }

func newLog(w io.Writer, o Options) (*Log, error) {
	if len(o.Key) < minKeyBytes {
		return nil, fmt.Errorf("audit log: the HMAC key has %d bytes, want at least %d", len(o.Key), minKeyBytes)
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Key = append([]byte(nil), o.Key...)
	l := &Log{o: o, ch: make(chan Record, o.Buffer), done: make(chan struct{}), log: o.Logger, out: w, w: bufio.NewWriterSize(w, 64<<10)}
	go l.run()
	return l, nil
}

// Write queues r and returns at once; when the queue is full or the log is
// closed, r is dropped and counted.
func (l *Log) Write(r Record) {
	if r.Time.IsZero() {
		r.Time = l.o.Now()
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.ch <- r:
	default:
		l.dropped.Add(1)
	}
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// Close writes the queued records, flushes, and closes the file (not a
// writer given to New). Records written after Close are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.ch)
	l.mu.Unlock()
	<-l.done
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.file != nil {
		return l.file.Close()
	}
	return nil
}

// Reopen closes the file and opens path again, for log rotation (rename
// the file, then Reopen, e.g. on SIGHUP). It does nothing for a log
// writing to an io.Writer.
func (l *Log) Reopen() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.file == nil {
		return nil
	}
	select {
	case <-l.done:
		return ErrClosed
	default:
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	old := l.file
	l.file, l.out = f, f
	l.w.Reset(f) // run flushes after every batch, under wmu: nothing is buffered here
	return old.Close()
}

// line is the JSON form of a Record.
type line struct {
	Time      string `json:"time"`
	Principal string `json:"principal"`
	Auth      string `json:"auth"`
	Remote    string `json:"remote,omitempty"`
	Method    string `json:"method"`
	Namespace string `json:"namespace,omitempty"`
	KeyHMAC   string `json:"key_hmac,omitempty"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason,omitempty"`
}

func (l *Log) run() {
	defer close(l.done)
	mac := hmac.New(sha256.New, l.o.Key)
	var lastErr string
	for r := range l.ch {
		l.wmu.Lock()
		enc := json.NewEncoder(l.w)
		enc.SetEscapeHTML(false)
		n := uint64(0)
		for {
			_ = enc.Encode(toLine(r, mac)) // errors surface at Flush
			n++
			if len(l.ch) == 0 || n >= 1024 {
				break
			}
			var ok bool
			if r, ok = <-l.ch; !ok {
				break
			}
		}
		err := l.w.Flush()
		if err != nil {
			l.w.Reset(l.out) // a bufio.Writer keeps its first error; start clean
		}
		l.wmu.Unlock()
		if err != nil {
			l.failed.Add(n)
			if err.Error() != lastErr {
				l.log.Error("audit log write failed; records are being lost", "err", err)
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		l.written.Add(n)
	}
}

func toLine(r Record, mac hash.Hash) line {
	ln := line{
		Time:      r.Time.UTC().Format(time.RFC3339Nano),
		Principal: r.Principal.Name,
		Auth:      r.Principal.Kind.String(),
		Remote:    r.Remote,
		Method:    r.Method,
		Namespace: r.Namespace,
		Decision:  "deny",
		Reason:    r.Reason,
	}
	if r.Principal.Node {
		ln.Auth = "node-certificate"
	}
	if r.Allowed {
		ln.Decision = "allow"
	}
	if r.Key != "" {
		ln.KeyHMAC = sum(mac, r.Key)
	}
	return ln
}

func sum(mac hash.Hash, key string) string {
	mac.Reset()
	io.WriteString(mac, key)
	var b [sha256.Size]byte
	return hex.EncodeToString(mac.Sum(b[:0])[:hashBytes])
}

// HashKey returns the key_hmac that a log with hmacKey writes for key, to
// find the lines about one key.
func HashKey(hmacKey []byte, key string) string {
	return sum(hmac.New(sha256.New, hmacKey), key)
}
