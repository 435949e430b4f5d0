package node_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/logtest"
	"github.com/ringcache/ringcache/pkg/node"
)

// When every node of a cluster is stopped at once (a deployment deleted, a
// whole environment shut down), no node has a peer that stays: none waits
// for peers to route around it, for new owners to pull its entries or for
// its leave message to spread, and none warns. Before, each waited 3 s for
// tables that no leaving coordinator would make, and one waited out its
// whole leave timeout, then logged "leave did not complete".
func TestCluster_WholeClusterStoppedAtOnceStopsWithoutWaitingOrWarning(t *testing.T) {
	const leaveTimeout = 20 * time.Second
	var logs []logtest.Warnings
	c := clustertest.Start(t, 3, clustertest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.LeaveTimeout = leaveTimeout
		w := logtest.NewWarnings(cfg.Logger.Handler())
		logs = append(logs, w)
		cfg.Logger = slog.New(w)
	}})
	for _, w := range logs {
		w.Reset() // only the stop's records count
	}

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
	for i, w := range logs {
		if msgs := w.Messages(); len(msgs) > 0 {
			t.Errorf("%s's stop logged %d warnings: %q", clustertest.NodeName(i), len(msgs), msgs)
		}
	}
}
