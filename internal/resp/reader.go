package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrProtocol marks a request that is not RESP: the connection answers it
// with an error and closes, as Redis does, since what follows cannot be
// framed.
var ErrProtocol = errors.New("Protocol error")

// Limits bound what one command may make the reader hold.
type Limits struct {
	// MaxArgs bounds the arguments of one command (the command name
	// included).
	MaxArgs int
	// MaxBulk bounds one argument's bytes.
	MaxBulk int
	// MaxCommand bounds the argument bytes of one command.
	MaxCommand int
}

const (
	// maxInline bounds an inline command's line, as Redis's
	// PROTO_INLINE_MAX_SIZE does.
	maxInline = 64 << 10
	// maxNumberLine bounds the line of an array or bulk length.
	maxNumberLine = 32
	// readBufSize is a connection's read buffer when it holds no large
	// command; a larger one is dropped once its command has been read.
	readBufSize = 16 << 10
)

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// parse reads one command at the start of b and appends its arguments to
// argv (slices of b). It returns how many bytes the command took, or 0 when
// b holds no whole command yet; need is then the least length b must have
// for the command to be whole, when known, else 0. A command with no
// arguments (an empty line, "*0") takes its bytes and appends nothing.
func (l Limits) parse(b []byte, argv [][]byte) (_ [][]byte, n, need int, err error) {
	if len(b) == 0 {
		return argv, 0, 0, nil
	}
	if b[0] != '*' {
		return l.parseInline(b, argv)
	}
	count, pos, err := number(b, 1, "multibulk")
	if err != nil || pos == 0 {
		return argv, 0, 0, err
	}
	if count <= 0 {
		return argv, pos, 0, nil
	}
	if count > int64(l.MaxArgs) {
		return argv, 0, 0, protoErr("%d arguments in one command, at most %d", count, l.MaxArgs)
	}
	start, total := len(argv), 0
	for range count {
		if pos >= len(b) {
			return argv[:start], 0, 0, nil
		}
		if b[pos] != '$' {
			return argv[:start], 0, 0, protoErr("expected '$', got '%s'", printable(b[pos]))
		}
		size, next, err := number(b, pos+1, "bulk")
		if err != nil || next == 0 {
			return argv[:start], 0, 0, err
		}
		switch {
		case size < 0:
			return argv[:start], 0, 0, protoErr("invalid bulk length")
		case size > int64(l.MaxBulk):
			return argv[:start], 0, 0, protoErr("bulk length %d exceeds the limit of %d bytes", size, l.MaxBulk)
		}
		if total += int(size); total > l.MaxCommand {
			return argv[:start], 0, 0, protoErr("command exceeds the limit of %d bytes", l.MaxCommand)
		}
		end := next + int(size)
		if end+2 > len(b) {
			return argv[:start], 0, end + 2, nil
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return argv[:start], 0, 0, protoErr("bulk string not terminated by CRLF")
		}
		argv = append(argv, b[next:end:end])
		pos = end + 2
	}
	return argv, pos, 0, nil
}

// number reads the integer line that starts at b[from] and ends in CRLF,
// and returns it and the index after the CRLF, or next=0 when the line is
// not whole yet.
func number(b []byte, from int, what string) (v int64, next int, err error) {
	i := bytes.IndexByte(b[from:min(len(b), from+maxNumberLine)], '\n')
	if i < 0 {
		if len(b)-from >= maxNumberLine {
			return 0, 0, protoErr("too big %s count string", what)
		}
		return 0, 0, nil
	}
	line := b[from : from+i]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, 0, protoErr("invalid %s length", what)
	}
	v, ok := parseDecimal(line[:len(line)-1])
	if !ok {
		return 0, 0, protoErr("invalid %s length", what)
	}
	return v, from + i + 1, nil
}

// parseDecimal parses a length as Redis does (string2ll): an optional '-'
// and decimal digits, no '+', no leading zero (but "0"), no spaces, no
// overflow.
func parseDecimal(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 || b[0] == '0' && (len(b) > 1 || neg) {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case neg && v <= 1<<63:
		return -int64(v), true
	case !neg && v < 1<<63:
		return int64(v), true
	}
	return 0, false
}

// parseInline reads a command typed as one line, its arguments separated by
// spaces (as telnet sends; quoting is not supported).
func (l Limits) parseInline(b []byte, argv [][]byte) ([][]byte, int, int, error) {
	i := bytes.IndexByte(b[:min(len(b), maxInline)], '\n')
	if i < 0 {
		if len(b) >= maxInline {
			return argv, 0, 0, protoErr("too big inline request")
		}
		return argv, 0, 0, nil
	}
	line := bytes.TrimSuffix(b[:i], []byte{'\r'})
	start, total := len(argv), 0
	for f := range bytes.FieldsFuncSeq(line, func(r rune) bool { return r == ' ' || r == '\t' }) {
		if len(argv)-start >= l.MaxArgs {
			return argv[:start], 0, 0, protoErr("more than %d arguments in one command", l.MaxArgs)
		}
		if total += len(f); len(f) > l.MaxBulk || total > l.MaxCommand {
			return argv[:start], 0, 0, protoErr("inline argument of %d bytes; the limits are %d per argument and %d per command", len(f), l.MaxBulk, l.MaxCommand)
		}
		argv = append(argv, f)
	}
	return argv, i + 1, 0, nil
}

func printable(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf("\\x%02x", c)
}

// reader frames the commands of one connection. The arguments it returns
// are slices of its buffer: valid until the next blocking read.
type reader struct {
	r        io.Reader
	lim      Limits
	buf      []byte
	pos, end int // unread: buf[pos:end]
}

func newReader(r io.Reader, lim Limits) *reader {
	return &reader{r: r, lim: lim, buf: make([]byte, readBufSize)}
}

// buffered returns the bytes read from the connection and not yet parsed.
func (rd *reader) buffered() int { return rd.end - rd.pos }

// next appends the next command's arguments to argv. Without block it
// parses only what is buffered and returns ok=false when that holds no
// whole command; with block it reads until a command is whole. It skips
// empty commands.
func (rd *reader) next(argv [][]byte, block bool) (_ [][]byte, ok bool, err error) {
	for {
		start := len(argv)
		var n, need int
		argv, n, need, err = rd.lim.parse(rd.buf[rd.pos:rd.end], argv)
		if err != nil {
			return argv, false, err
		}
		if n > 0 {
			rd.pos += n
			if len(argv) > start {
				return argv, true, nil
			}
			continue
		}
		if !block {
			return argv, false, nil
		}
		if err := rd.fill(need); err != nil {
			return argv, false, err
		}
	}
}

// fill reads more bytes for a command of need bytes from rd.pos (0:
// unknown). The buffer grows only when full, to at most twice its size, so
// it holds at most twice what the client sent: a declared length is not
// allocated before its bytes arrive.
func (rd *reader) fill(need int) error {
	if rd.pos == rd.end {
		rd.pos, rd.end = 0, 0
		if len(rd.buf) > readBufSize { // a large command is done: let its buffer go
			rd.buf = make([]byte, readBufSize)
		}
	}
	if rd.end == len(rd.buf) || need > len(rd.buf)-rd.pos {
		unread := rd.end - rd.pos
		if rd.pos > 0 {
			copy(rd.buf, rd.buf[rd.pos:rd.end])
			rd.pos, rd.end = 0, unread
		}
		if rd.end == len(rd.buf) {
			size := 2 * len(rd.buf)
			if need > 0 {
				size = min(size, need)
			}
			nb := make([]byte, min(max(size, len(rd.buf)+1), rd.maxBuffer()))
			copy(nb, rd.buf[:rd.end])
			rd.buf = nb
		}
	}
	n, err := rd.r.Read(rd.buf[rd.end:])
	rd.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// maxBuffer is the largest buffer a whole command can need: its argument
// bytes and their headers.
func (rd *reader) maxBuffer() int {
	return max(readBufSize, maxInline+1, rd.lim.MaxCommand+rd.lim.MaxArgs*(2*maxNumberLine)+maxNumberLine)
}
