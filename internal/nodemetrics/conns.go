package nodemetrics

import (
	"context"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// ConnCounter is a gRPC stats.Handler that counts the server's open
// connections (connected_clients): one atomic add per connection, nothing
// per call. The zero value is ready.
type ConnCounter struct{ open atomic.Int64 }

// Open returns the number of open connections.
func (c *ConnCounter) Open() int64 { return c.open.Load() }

func (c *ConnCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (c *ConnCounter) HandleRPC(context.Context, stats.RPCStats)                         {}
func (c *ConnCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c *ConnCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		c.open.Add(1)
	case *stats.ConnEnd:
		c.open.Add(-1)
	}
}
