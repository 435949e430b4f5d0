//go:build !linux

package resp

import (
	"io"
	"net"
)

// newRawIO is rawio_linux.go's on Linux; elsewhere connections use the
// net.Conn as it is.
func newRawIO(net.Conn) io.ReadWriter { return nil }
