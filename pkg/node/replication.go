package node

import (
	"context"
	"fmt"
	"time"
)

// Replicated write-behind, the node's part: a graceful leave that hands
// its pending records over when it cannot flush them. Its instruments are
// in internal/nodemetrics.

// handoverAfter is how long a leaving node tries to flush its journal
// before it hands what is left to the nodes that take its partitions over.
const handoverAfter = 2 * time.Second

// flushFirst writes the journal to the database before the node announces
// its leave, for at most handoverAfter when other nodes could take the
// records over, else until ctx ends. It reports whether it emptied the
// journal.
func (n *Node) flushFirst(ctx context.Context) bool {
	if n.flusher == nil {
		return true
	}
	if r := n.engine.Ring(); r != nil && len(r.Members()) > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handoverAfter)
		defer cancel()
	}
	return n.flusher.Flush(ctx) == nil
}

// flushOrHandOver writes the journal to the database; when that has not
// worked within handoverAfter (the database is down), or at once when try
// is false, it hands the pending records to the nodes that own their
// partitions once this one is gone, then flushes what is left until ctx
// ends.
func (n *Node) flushOrHandOver(ctx context.Context, try bool) error {
	if n.flusher == nil {
		return nil
	}
	if try {
		fctx, cancel := context.WithTimeout(ctx, handoverAfter)
		err := n.flusher.Flush(fctx)
		cancel()
		if err == nil {
			return nil
		}
	}
	handed, herr := n.engine.HandOver(ctx)
	if handed > 0 {
		n.log.Warn("the database could not be written; handed the pending write-behind records to the nodes that take this node's partitions", "records", handed)
	}
	if herr != nil {
		n.log.Warn("handover incomplete", "err", herr)
	}
	return n.flushJournal(ctx)
}

// settleDrops waits, briefly, until the replicas have been told what this
// node flushed, so they do not take those records over when it leaves.
func (n *Node) settleDrops(ctx context.Context) {
	if err := n.engine.SettleReplication(ctx); err != nil {
		n.log.Debug("replicas not all told of the last flushes before leaving", "err", fmt.Sprint(err))
	}
}
