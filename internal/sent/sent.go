// Package sent tells whether a failed gRPC call may have reached the
// server. A call that failed before its headers were handed to a live
// connection (no connection could be made, the connection was closing) was
// surely not applied, so even a write may be retried elsewhere; a call that
// failed later may have been applied. gRPC reports both as UNAVAILABLE with
// free-form text: this package decides on events instead.
//
// Install Handler on the client connection (grpc.WithStatsHandler) and
// wrap each call's context with Track.
package sent

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// Tracker records whether one call's headers reached a connection.
type Tracker struct{ sent atomic.Bool }

// Sent reports whether the call may have reached the server.
func (t *Tracker) Sent() bool { return t.sent.Load() }

type key struct{}

// Track returns a context for one call and its Tracker.
func Track(ctx context.Context) (context.Context, *Tracker) {
	t := &Tracker{}
	return context.WithValue(ctx, key{}, t), t
}

// Handler is a stats.Handler that marks a tracked call as sent once gRPC
// hands its headers to a connection.
type Handler struct{}

var _ stats.Handler = Handler{}

// TagRPC implements stats.Handler.
func (Handler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC implements stats.Handler.
func (Handler) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); ok {
		if t, ok := ctx.Value(key{}).(*Tracker); ok {
			t.sent.Store(true)
		}
	}
}

// TagConn implements stats.Handler.
func (Handler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn implements stats.Handler.
func (Handler) HandleConn(context.Context, stats.ConnStats) {}
