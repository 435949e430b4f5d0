package resp

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"testing"
)

// BenchmarkDoor_Pipelined measures the door's cost per command: one
// connection sends batches of 16 commands (90 % GET, 10 % SET of 100-byte
// values, over 1,000 cached keys) as a pipelining client does, and reads
// the 16 replies. The client is as cheap as it can be (batches built once,
// replies skipped by their type byte), so ns/op and allocs/op are mostly the
// server's (client and server share the process, so this is the door's own
// cost, not a comparison with another server). Run:
// go test -run '^$' -bench Door -benchmem ./internal/resp/
func BenchmarkDoor_Pipelined(b *testing.B) {
	batch, keys := benchBatch, 1000
	_, addr := startServer(b, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	value := bytes.Repeat([]byte("v"), 100)
	var frames [][]byte
	for f := range 64 {
		var buf bytes.Buffer
		for i := range batch {
			k := fmt.Sprintf("key:%d", (f*batch+i*37)%keys)
			if (f*batch+i)%10 == 0 {
				buf.Write(encode("SET", k, string(value)))
			} else {
				buf.Write(encode("GET", k))
			}
		}
		frames = append(frames, buf.Bytes())
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	var prime bytes.Buffer
	for k := range keys {
		prime.Write(encode("SET", fmt.Sprintf("key:%d", k), string(value)))
	}
	if _, err := nc.Write(prime.Bytes()); err != nil {
		b.Fatal(err)
	}
	for range keys {
		skipReply(b, br)
	}
	b.ResetTimer()
	b.ReportAllocs()
	for i := 0; i < b.N; i += batch {
		if _, err := nc.Write(frames[(i/batch)%len(frames)]); err != nil {
			b.Fatal(err)
		}
		for range batch {
			skipReply(b, br)
		}
	}
}

// skipReply reads one simple reply: +OK, -ERR, :n, or a bulk string.
func skipReply(b *testing.B, br *bufio.Reader) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		b.Fatal(err)
	}
	switch line[0] {
	case '$':
		n := 0
		for _, c := range line[1 : len(line)-2] {
			if c == '-' {
				return
			}
			n = n*10 + int(c-'0')
		}
		if _, err := br.Discard(n + 2); err != nil {
			b.Fatal(err)
		}
	case '+', ':':
	default:
		b.Fatalf("reply %q", line)
	}
}

// benchBatch is the pipeline depth of BenchmarkDoor_Pipelined.
var benchBatch = 16
