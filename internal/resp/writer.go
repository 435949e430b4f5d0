package resp

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// writer encodes replies in the connection's protocol version (2 or 3)
// into a buffered writer; flush sends them.
type writer struct {
	bw    *bufio.Writer
	proto int
	num   [24]byte
}

func newWriter(w io.Writer) *writer {
	return &writer{bw: bufio.NewWriterSize(w, 16<<10), proto: 2}
}

func (w *writer) header(prefix byte, n int64) {
	w.bw.WriteByte(prefix)
	w.bw.Write(strconv.AppendInt(w.num[:0], n, 10))
	w.bw.WriteString("\r\n")
}

// simple writes a simple string: +s.
func (w *writer) simple(s string) {
	w.bw.WriteByte('+')
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

func (w *writer) ok() { w.bw.WriteString("+OK\r\n") }

// err writes an error reply; msg starts with its code (ERR, NOPERM, …) and
// has no line breaks (they become spaces).
func (w *writer) err(msg string) {
	w.bw.WriteByte('-')
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	w.bw.WriteString(msg)
	w.bw.WriteString("\r\n")
}

func (w *writer) int(n int64) { w.header(':', n) }

func (w *writer) bulk(b []byte) {
	w.header('$', int64(len(b)))
	w.bw.Write(b)
	w.bw.WriteString("\r\n")
}

func (w *writer) bulkString(s string) {
	w.header('$', int64(len(s)))
	w.bw.WriteString(s)
	w.bw.WriteString("\r\n")
}

// null writes a missing value: $-1 in RESP2, _ in RESP3.
func (w *writer) null() {
	if w.proto >= 3 {
		w.bw.WriteString("_\r\n")
		return
	}
	w.bw.WriteString("$-1\r\n")
}

// nullArray writes a missing array: *-1 in RESP2, _ in RESP3.
func (w *writer) nullArray() {
	if w.proto >= 3 {
		w.bw.WriteString("_\r\n")
		return
	}
	w.bw.WriteString("*-1\r\n")
}

func (w *writer) array(n int) { w.header('*', int64(n)) }

// mapHeader starts a map of n pairs: %n in RESP3, an array of 2n in RESP2.
func (w *writer) mapHeader(n int) {
	if w.proto >= 3 {
		w.header('%', int64(n))
		return
	}
	w.header('*', int64(2*n))
}

// setHeader starts a set of n members: ~n in RESP3, an array in RESP2.
func (w *writer) setHeader(n int) {
	if w.proto >= 3 {
		w.header('~', int64(n))
		return
	}
	w.header('*', int64(n))
}

// bulkOrNull writes b, or null when found is false.
func (w *writer) bulkOrNull(b []byte, found bool) {
	if !found {
		w.null()
		return
	}
	w.bulk(b)
}

// strings writes an array of bulk strings.
func (w *writer) strings(ss ...string) {
	w.array(len(ss))
	for _, s := range ss {
		w.bulkString(s)
	}
}

// verbatim writes text as RESP3 verbatim text (=…txt:) or a bulk string.
func (w *writer) verbatim(text string) {
	if w.proto >= 3 {
		w.header('=', int64(len(text)+4))
		w.bw.WriteString("txt:")
		w.bw.WriteString(text)
		w.bw.WriteString("\r\n")
		return
	}
	w.bulkString(text)
}

func (w *writer) flush() error { return w.bw.Flush() }
