package rawnet

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO is raw I/O on one connection (see the package doc). One
// goroutine reads and one writes at a time, each with state of its own; a
// call allocates nothing.
type rawIO struct {
	rc     syscall.RawConn
	rd, wr rawCall
}

// rawCall is one direction's call in progress.
type rawCall struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // made once
}

// New returns raw I/O for nc, or nil when nc is not a plain TCP
// connection (TLS over it, say).
func New(nc net.Conn) io.ReadWriter {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.rd.fn = r.rd.readFD
	r.wr.fn = r.wr.writeFD
	return r
}

// Read reads at least one byte into p, or fails.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := &r.rd
	c.p, c.n, c.err = p, 0, nil
	err := r.rc.Read(c.fn)
	c.p = nil
	if err != nil {
		return 0, err
	}
	return c.n, c.err
}

// Write writes all of p, or fails.
func (r *rawIO) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c := &r.wr
	c.p, c.n, c.err = p, 0, nil
	err := r.rc.Write(c.fn)
	c.p = nil
	if err == nil {
		err = c.err
	}
	return c.n, err
}

func (c *rawCall) readFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&c.p[0])), uintptr(len(c.p)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // the poller waits until the socket is readable
		case e != 0:
			c.err = e
		case n == 0:
			c.err = io.EOF
		default:
			c.n = int(n)
		}
		return true
	}
}

func (c *rawCall) writeFD(fd uintptr) bool {
	for c.n < len(c.p) {
		rest := c.p[c.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // the poller waits until the socket is writable
		case e != 0:
			c.err = e
			return true
		}
		c.n += int(n)
	}
	return true
}
