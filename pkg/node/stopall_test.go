package node_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
)

// warnings keeps the messages of the Warn and Error records logged through
// it, then passes every record on.
type warnings struct {
	slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (h warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.mu.Lock()
		*h.msgs = append(*h.msgs, r.Message)
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return warnings{h.Handler.WithAttrs(as), h.mu, h.msgs}
}

func (h warnings) WithGroup(name string) slog.Handler {
	return warnings{h.Handler.WithGroup(name), h.mu, h.msgs}
}

// When every node of a cluster is stopped at once (a deployment deleted, a
// whole environment shut down), no node has a peer that stays: none waits
// for peers to route around it, for new owners to pull its entries or for
// its leave message to spread, and none warns. Before, each waited 3 s for
// tables that no leaving coordinator would make, and one waited out its
// whole leave timeout, then logged "leave did not complete".
func TestCluster_WholeClusterStoppedAtOnceStopsWithoutWaitingOrWarning(t *testing.T) {
	const leaveTimeout = 20 * time.Second
	var mu sync.Mutex
	var warned []string
	c := clustertest.Start(t, 3, clustertest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.LeaveTimeout = leaveTimeout
		cfg.Logger = slog.New(warnings{cfg.Logger.Handler(), &mu, &warned})
	}})
	mu.Lock()
	warned = nil // only the stop's records count
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*leaveTimeout)
	defer cancel()
	var wg sync.WaitGroup
	took := make([]time.Duration, 3)
	errs := make([]error, 3)
	for _, i := range c.Up() {
		wg.Go(func() {
			start := time.Now()
			errs[i] = c.Node(i).Close(ctx)
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i := range 3 {
		if errs[i] != nil {
			t.Errorf("%s: Close: %v", clustertest.NodeName(i), errs[i])
		}
		// Waiting for a table without this node takes RoutedAroundTimeout,
		// for the leave broadcast leaveTimeout.
		if took[i] >= node.RoutedAroundTimeout {
			t.Errorf("%s took %v to stop: it waited for peers that were stopping too", clustertest.NodeName(i), took[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warned) > 0 {
		t.Errorf("the stop logged %d warnings: %q", len(warned), warned)
	}
}
