package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Kind is what an operation did.
type Kind uint8

const (
	Read Kind = iota
	Write
)

func (k Kind) String() string {
	if k == Read {
		return "read"
	}
	return "write"
}

// Result is how an operation ended, as its client saw it.
type Result uint8

const (
	// OK: acknowledged (a write) or answered (a read).
	OK Result = iota
	// Fail: the call returned an error other than a timeout.
	Fail
	// Unknown: the call timed out; it may or may not have taken effect.
	Unknown
)

func (r Result) String() string {
	return [...]string{"ok", "fail", "unknown"}[r]
}

// Op is one recorded operation. Times are since the run began. A write's
// value names its writer and sequence number (see value), so every value
// ever written is unique and a read maps back to the write it saw.
type Op struct {
	Client   int
	Via      string // node called ("" for a ring-aware client)
	NS, Key  string
	Kind     Kind
	Value    string // written, or read ("" when not found)
	Found    bool   // reads: whether the key existed
	Invoke   time.Duration
	Complete time.Duration
	Result   Result
	Err      string // the error's gRPC code or text, for the log
}

// value encodes writer id and its sequence number: "c3.41".
func value(client, seq int) string { return "c" + strconv.Itoa(client) + "." + strconv.Itoa(seq) }

// parseValue is value's inverse; ok is false for anything else.
func parseValue(v string) (client, seq int, ok bool) {
	rest, found := strings.CutPrefix(v, "c")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	c, err1 := strconv.Atoi(a)
	s, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || c < 0 || s < 0 {
		return 0, 0, false
	}
	return c, s, true
}

// History collects operations from concurrent clients.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts the clock of a history.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time since the history began.
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Add records op.
func (h *History) Add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the operations, by invocation time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	out := append([]Op(nil), h.ops...)
	h.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Invoke < out[j].Invoke })
	return out
}

// classify turns a call's error into a Result and a short reason.
func classify(err error) (Result, string) {
	if err == nil {
		return OK, ""
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Unknown, "timeout"
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.DeadlineExceeded, codes.Canceled:
			return Unknown, s.Code().String()
		}
		return Fail, s.Code().String()
	}
	return Fail, fmt.Sprintf("%.60s", err.Error())
}

// WriteJSON writes the outcome as JSON lines: one object per round, then
// one per operation (times in seconds since the run began), for a look at
// a finding's history with jq.
func (o *Outcome) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, r := range o.Rounds {
		if err := enc.Encode(map[string]any{"round": r.Index, "nemesis": r.Nemesis, "victim": r.Victim,
			"start": r.Start.Seconds(), "inject": r.Inject.Seconds(), "detected": r.Detected.Seconds(),
			"heal": r.Heal.Seconds(), "converged": r.Converged.Seconds(), "end": r.End.Seconds(), "err": r.Err}); err != nil {
			return err
		}
	}
	for _, op := range o.Ops {
		if err := enc.Encode(map[string]any{"client": op.Client, "via": op.Via, "ns": op.NS, "key": op.Key,
			"kind": op.Kind.String(), "value": op.Value, "found": op.Found, "invoke": op.Invoke.Seconds(),
			"complete": op.Complete.Seconds(), "result": op.Result.String(), "err": op.Err}); err != nil {
			return err
		}
	}
	return nil
}
