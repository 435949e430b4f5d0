package service

import (
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"

	"github.com/ringcache/ringcache/internal/reason"
)

// Send deadlines. gRPC's ServerStream.Send blocks once the client has
// stopped reading (its flow-control window and gRPC's 64 KiB send quota
// are spent) and returns only when the stream ends, so a client that
// never reads would hold the handler, its goroutine and whatever it
// references for as long as it keeps the connection. With a send timeout,
// the Guard runs each stream's handler on a goroutine of its own and
// watches its sends: when one has waited the timeout, the Guard ends the
// stream with RESOURCE_EXHAUSTED, which cancels the stream's context and
// so unblocks the send, and the handler returns.
//
// What the client had not read stays queued in gRPC's transport (at most
// the send quota, 64 KiB, plus the last message) until the client reads
// or its connection closes; OnSendTimeout lets the node close the
// connection of a client that does this again and again.

// DefaultSendTimeout is how long a stream's send may wait for its client
// to read before the stream is ended.
const DefaultSendTimeout = 10 * time.Second

// errSendTimeout ends a stream whose client did not read.
func errSendTimeout(d time.Duration) error {
	return reason.Status(codes.ResourceExhausted, reason.Backpressure,
		"stream ended: the client fell behind, reading nothing for "+d.String()+" while messages waited", 0).Err()
}

// deadlineStream notes when a send starts and ends.
type deadlineStream struct {
	grpc.ServerStream
	base  time.Time    // the stream's start, a monotonic reading
	since atomic.Int64 // when the send in progress started, after base; 0: none
}

func (s *deadlineStream) SendMsg(m any) error {
	s.since.Store(int64(time.Since(s.base)) + 1)
	err := s.ServerStream.SendMsg(m)
	s.since.Store(0)
	return err
}

// serveWithDeadline runs handler on its own goroutine and ends the
// stream when a send has waited g.SendTimeout.
func (g *Guard) serveWithDeadline(srv any, ss grpc.ServerStream, handler grpc.StreamHandler) error {
	ds := &deadlineStream{ServerStream: ss, base: time.Now()}
	done := make(chan error, 1)
	g.handlers.Go(func() { done <- handler(srv, ds) })
	timeout := g.SendTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
		}
		next := timeout
		if since := ds.since.Load(); since != 0 {
			waited := time.Since(ds.base) - time.Duration(since-1)
			if waited >= timeout {
				g.sendTimeouts.Add(1)
				if p, ok := peer.FromContext(ss.Context()); ok && g.OnSendTimeout != nil {
					g.OnSendTimeout(p.Addr)
				}
				return errSendTimeout(timeout)
			}
			next = timeout - waited
		}
		t.Reset(next)
	}
}

// Wait returns once every stream handler the Guard started has returned.
// A stream ended for its send deadline returns to gRPC before its handler
// does, so gRPC's own wait (grpc.WaitForHandlers) does not cover it: call
// Wait after the server has stopped and before releasing what handlers
// use.
func (g *Guard) Wait() { g.handlers.Wait() }

// SendTimeouts returns how many streams were ended for their send
// deadline since start.
func (g *Guard) SendTimeouts() uint64 { return g.sendTimeouts.Load() }
