package journal

import (
	"context"
	"errors"
	"fmt"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// Queue is the Journal as the write-behind namespaces see it: it
// implements strategy.Journal.
type Queue struct{ j *Journal }

// AsQueue returns j as a strategy.Journal.
func (j *Journal) AsQueue() Queue { return Queue{j} }

var _ strategy.Journal = Queue{}

// Append implements strategy.Journal: ErrFull comes back wrapped in
// strategy.ErrBackpressure, ErrSuperseded as strategy.ErrSuperseded.
func (q Queue) Append(ctx context.Context, ns string, w strategy.Write) error {
	var value []byte
	if !w.Delete {
		value = w.Value
	}
	err := q.j.Append(ctx, Record{Namespace: ns, Key: w.Key, Value: value, Delete: w.Delete, Version: w.Version})
	switch {
	case errors.Is(err, ErrFull):
		return fmt.Errorf("%w: %w", strategy.ErrBackpressure, err)
	case errors.Is(err, ErrSuperseded):
		return strategy.ErrSuperseded
	}
	return err
}

// Pending implements strategy.Journal.
func (q Queue) Pending(_ context.Context, ns, key string) (strategy.Write, bool, error) {
	r, ok, err := q.j.Pending(ns, key)
	if err != nil || !ok {
		return strategy.Write{}, false, err
	}
	return r.Write(), true, nil
}

// Write returns r as the write it records.
func (r Record) Write() strategy.Write {
	return strategy.Write{Key: r.Key, Value: r.Value, Delete: r.Delete, Version: r.Version}
}

// toDB is the write the database gets: the opened value if the flusher
// opened a sealed one.
func (r *Record) toDB() strategy.Write {
	w := r.Write()
	if r.opened != nil {
		w.Value = r.opened
	}
	return w
}
