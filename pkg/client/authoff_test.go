package client_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/client"
)

// syncBuffer is a bytes.Buffer safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A client with a token, talking to nodes that check none (no auth
// section), logs that once: the token protects nothing there. Without a
// token it says nothing.
func TestClient_WarnsOnceWhenNodesCheckNoToken(t *testing.T) {
	const warning = "the node checks no token"
	c := clustertest.Start(t, 2, clustertest.Options{})
	use := func(token string) string {
		t.Helper()
		var logs syncBuffer
		cl := newClient(t, c, client.Options{Token: token, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		for k := range 20 { // keys on both nodes: two streams
			if err := cl.Set(context.Background(), clustertest.NSCache, string(rune('a'+k)), []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
		return logs.String()
	}
	if logs := use("some-token"); strings.Count(logs, warning) != 1 {
		t.Fatalf("with a token, the client logged the warning %d times, want once:\n%s", strings.Count(logs, warning), logs)
	}
	if logs := use(""); strings.Contains(logs, warning) {
		t.Fatalf("without a token, the client warned:\n%s", logs)
	}
}
