package engine

import (
	"context"
	"fmt"

	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// track counts a Get served here as the key's owner toward the hot-key
// list (Config.HotKeys), in read-through namespaces only: only those can be
// loaded again after a restart. The partition is computed only for the
// sampled reads.
func (e *Engine) track(ns *strategy.Namespace, op *Op) {
	t := e.cfg.HotKeys
	if !t.Sample() || ns.Policy().Read != strategy.ReadThrough {
		return
	}
	parts := e.cfg.Ring.PartitionCount
	if parts == 0 {
		parts = ring.DefaultPartitionCount
	}
	t.Count(op.Namespace, op.Key, ring.PartitionFor(e.cfg.Ring.DefaultNamespace, op.Namespace, op.Key, parts))
}

// Warm loads key of namespace ns into memory when this node owns it by the
// ring it routes by and does not hold it, through the namespace's one load
// per key (strategy.Namespace.Warm): a client's miss of the key meanwhile
// waits for the same load. owned is false, and nothing is loaded, when
// another node owns the key or the node is not ready.
func (e *Engine) Warm(ctx context.Context, namespace, key string) (src strategy.WarmSource, owned bool, err error) {
	r := e.ring.Load()
	if r == nil || !e.Ready() {
		return strategy.WarmNotLoaded, false, fmt.Errorf("warm: %w", ErrNotReady)
	}
	ns, err := e.Namespace(namespace)
	if err != nil {
		return strategy.WarmNotLoaded, false, err
	}
	if r.Owner(ring.Key(namespace, key)).Name != e.cfg.Self {
		return strategy.WarmNotLoaded, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ForwardTimeout)
	defer cancel()
	src, err = ns.Warm(ctx, key)
	return src, true, err
}
