package client_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/logtest"
	"github.com/ringcache/ringcache/pkg/client"
)

// A client with a token, talking to nodes that check none (no auth
// section), logs that once: the token protects nothing there. Without a
// token it says nothing.
func TestClient_WarnsOnceWhenNodesCheckNoToken(t *testing.T) {
	const warning = "ringcache client: the node checks no token (its config has no auth section): Options.Token protects nothing there"
	c := clustertest.Start(t, 2, clustertest.Options{})
	use := func(token string) []string {
		t.Helper()
		logs := logtest.NewWarnings(slog.NewTextHandler(io.Discard, nil))
		cl := newClient(t, c, client.Options{Token: token, Logger: slog.New(logs)})
		for k := range 20 { // keys on both nodes: two streams
			if err := cl.Set(context.Background(), clustertest.NSCache, string(rune('a'+k)), []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
		return logs.Messages()
	}
	count := func(msgs []string) int {
		return len(slices.DeleteFunc(msgs, func(m string) bool { return m != warning }))
	}
	if got := use("some-token"); count(got) != 1 {
		t.Fatalf("with a token, the client logged the warning %d times, want once: %q", count(got), got)
	}
	if got := use(""); count(got) != 0 {
		t.Fatalf("without a token, the client warned: %q", got)
	}
}
