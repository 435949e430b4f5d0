// Package invalwatch follows one node's invalidation stream
// (Cache.WatchInvalidations) for a cache that keeps copies of the keys that
// node owns: the hot cache of a node and the near cache of a client. Both
// must drop a key when its owner reports it changed, and drop everything
// whenever the stream is not live, since changes may then be missed.
//
// Follow keeps the stream open, resubscribing after a break with a
// jittered exponential backoff (reset once a subscription succeeds), until
// its context ends.
package invalwatch

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Opener opens a stream; the first message it receives says the
// subscription is live.
type Opener func(ctx context.Context) (pb.Cache_WatchInvalidationsClient, error)

// Handler is told what the stream says. Its methods are called from
// Follow's goroutine, one at a time.
type Handler interface {
	// Subscribed: the stream is live; every change from here on arrives.
	Subscribed()
	// Invalidate: these keys changed on the node.
	Invalidate(keys []*pb.KeyRef)
	// Lost: the stream is down (err says why; nil when ctx ended). Changes
	// may be missed until the next Subscribed.
	Lost(err error)
}

// Backoff bounds: the first wait after a break, and the longest.
const (
	MinBackoff = 20 * time.Millisecond
	MaxBackoff = time.Second
)

// Follow runs until ctx ends.
func Follow(ctx context.Context, open Opener, h Handler) {
	b := &backoff.ExponentialBackOff{InitialInterval: MinBackoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: MaxBackoff}
	for ctx.Err() == nil {
		subscribed, err := stream(ctx, open, h)
		if ctx.Err() != nil {
			h.Lost(nil)
			return
		}
		h.Lost(err)
		if subscribed {
			b.Reset()
		}
		if Sleep(ctx, b.NextBackOff()) != nil {
			return
		}
	}
}

// stream subscribes and reports keys until the stream breaks; subscribed
// tells whether it got as far as subscribing.
func stream(ctx context.Context, open Opener, h Handler) (subscribed bool, _ error) {
	s, err := open(ctx)
	if err != nil {
		return false, err
	}
	if _, err := s.Recv(); err != nil { // the empty "subscribed" message
		return false, err
	}
	h.Subscribed()
	for {
		msg, err := s.Recv()
		if err != nil {
			return true, err
		}
		h.Invalidate(msg.Keys)
	}
}

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
