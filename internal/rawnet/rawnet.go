// Package rawnet reads and writes plain TCP connections with raw system
// calls, for the node's listeners and dialers.
//
// Go's sockets are non-blocking: when a read or write would block, the
// runtime's poller parks the goroutine until the socket is ready. Yet
// net.Conn makes each call as one that might block (syscall.Syscall, with
// entersyscall and exitsyscall around it), and at GOMAXPROCS=1 that
// bookkeeping cost more than the calls: the processor is handed between
// threads (futex wake-ups), and the runtime's monitor is woken each time
// the process had gone idle. A ringcache node makes a read and a write
// per batch of a client's operations, so it paid that twice per batch.
// rawnet makes the same calls through syscall.RawConn with RawSyscall, so
// deadlines, Close and the poller work as on the net.Conn.
//
// On the bench-compare cluster (BENCHMARKS.md) the RESP door in cluster
// mode went from 51–53k to 77–81k operations per second on less CPU.
//
// Only plain *net.TCPConn on Linux get raw I/O; anything else (a TLS
// connection, another system) is used as it is.
package rawnet

import (
	"context"
	"io"
	"net"
)

// conn is a TCP connection whose Read and Write are raw.
type conn struct {
	net.Conn // *net.TCPConn: deadlines, addresses, Close
	io       io.ReadWriter
}

func (c *conn) Read(p []byte) (int, error)  { return c.io.Read(p) }
func (c *conn) Write(p []byte) (int, error) { return c.io.Write(p) }

// Wrap returns nc with raw Read and Write, or nc itself when it cannot
// have them.
func Wrap(nc net.Conn) net.Conn {
	if rw := New(nc); rw != nil {
		return &conn{Conn: nc, io: rw}
	}
	return nc
}

// listener wraps each accepted connection.
type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(nc), nil
}

// Listener returns l, its accepted connections wrapped (Wrap).
func Listener(l net.Listener) net.Listener { return listener{l} }

// Dial connects to addr over TCP and wraps the connection (Wrap); it fits
// grpc.WithContextDialer.
func Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return Wrap(nc), nil
}
