package rawnet

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	client, err = net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// Raw I/O moves what the net.Conn would: a write larger than the socket's
// buffers waits for the reader (EAGAIN, then the poller) and arrives whole;
// a read returns what the peer sent, then io.EOF once it closes.
func TestRawIO_WritesWholeAndReadsToEOF(t *testing.T) {
	server, client := tcpPair(t)
	rw := New(server)
	if rw == nil {
		t.Fatal("no raw I/O for a plain TCP connection")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(client, int64(len(big))))
		got <- b
	}()
	if n, err := rw.Write(big); err != nil || n != len(big) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(big))
	}
	if b := <-got; !bytes.Equal(b, big) {
		t.Fatalf("the peer read %d bytes, not the %d written", len(b), len(big))
	}

	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	b, err := io.ReadAll(rw)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadAll = %q, %v; want hello and EOF", b, err)
	}
}

// A deadline ends a read waiting for data, and a write to a peer that
// does not read, as on the net.Conn; Close from another goroutine ends a
// read too.
func TestRawIO_DeadlinesAndCloseEndWaitingCalls(t *testing.T) {
	server, _ := tcpPair(t)
	rw := New(server)
	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := rw.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = server.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := rw.Write(make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read: %v, want os.ErrDeadlineExceeded", err)
	}

	server, _ = tcpPair(t)
	rw = New(server)
	done := make(chan error, 1)
	go func() {
		_, err := rw.Read(make([]byte, 16))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond) // let the read wait (either way, it must end)
	server.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read ended by Close: %v, want net.ErrClosed", err)
	}
}
