package membership

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// testKey returns a distinct 32-byte AES key for each n.
func testKey(n byte) []byte { return bytes.Repeat([]byte{n}, 32) }

// testLogger logs through t.Log, so a failing test shows the node's and
// memberlist's lines. Lines after the test ends are dropped: memberlist's
// goroutines may still log a little after Shutdown returns (a probe in
// flight), and t.Log then would panic.
func testLogger(t *testing.T, name string) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimSpace(p)))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
