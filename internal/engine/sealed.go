package engine

import (
	"context"
	"fmt"

	"github.com/ringcache/ringcache/internal/seal"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// sealedJournal is the write-behind journal of a sensitive namespace: a
// value is sealed (internal/seal) before it reaches the journal — and so
// the disk, the replicas and a previous owner's handoff answers — and
// opened when it is read back. Deletes carry no value.
type sealedJournal struct {
	strategy.Journal
	s *seal.Sealer
}

func (j sealedJournal) Append(ctx context.Context, ns string, w strategy.Write) error {
	if !w.Delete {
		w.Value = j.s.Seal(seal.AAD(ns, w.Key), w.Value)
	}
	return j.Journal.Append(ctx, ns, w)
}

func (j sealedJournal) Pending(ctx context.Context, ns, key string) (strategy.Write, bool, error) {
	w, ok, err := j.Journal.Pending(ctx, ns, key)
	if err != nil || !ok || w.Delete {
		return w, ok, err
	}
	if w.Value, err = j.s.Open(seal.AAD(ns, key), w.Value); err != nil {
		return strategy.Write{}, false, fmt.Errorf("namespace %q: pending write: %w", ns, err)
	}
	return w, true, nil
}
