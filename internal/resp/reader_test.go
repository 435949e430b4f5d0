package resp

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

var testLimits = Limits{MaxArgs: 16, MaxBulk: 1024, MaxCommand: 4096}

func encode(args ...string) []byte {
	var b bytes.Buffer
	b.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.Bytes()
}

func readAll(t *testing.T, r io.Reader, lim Limits) ([][]string, error) {
	t.Helper()
	rd := newReader(r, lim)
	var out [][]string
	for {
		argv, _, err := rd.next(nil, true)
		if err != nil {
			return out, err
		}
		cmd := make([]string, len(argv))
		for i, a := range argv {
			cmd[i] = string(a)
		}
		out = append(out, cmd)
		if len(rd.buf) > rd.maxBuffer() {
			t.Fatalf("buffer grew to %d bytes, past the bound %d", len(rd.buf), rd.maxBuffer())
		}
	}
}

func TestReader_FramesPipelinedAndInlineCommands(t *testing.T) {
	in := append(encode("SET", "k", "v\r\nwith crlf"), encode("GET", "k")...)
	in = append(in, "PING hello\r\n\r\n*0\r\n"...)
	in = append(in, encode("ECHO", "")...)
	got, err := readAll(t, iotest.OneByteReader(bytes.NewReader(in)), testLimits)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want EOF", err)
	}
	want := [][]string{{"SET", "k", "v\r\nwith crlf"}, {"GET", "k"}, {"PING", "hello"}, {"ECHO", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("command %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestReader_RefusesBadFramesWithRedisErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"*2\r\n$3\r\nGET\r\n:1\r\n", "expected '$', got ':'"},
		{"*x\r\n", "invalid multibulk length"},
		{"*1\r\n$-5\r\n", "invalid bulk length"},
		{"*1\r\n$abc\r\n", "invalid bulk length"},
		// Lengths as Redis's string2ll reads them: no sign, leading zero or space.
		{"*1\r\n$+3\r\nGET\r\n", "invalid bulk length"},
		{"*1\r\n$03\r\nGET\r\n", "invalid bulk length"},
		{"*1\r\n$ 3\r\nGET\r\n", "invalid bulk length"},
		{"*1\r\n$-0\r\n", "invalid bulk length"},
		{"*1\r\n$99999999999999999999\r\n", "invalid bulk length"},
		{"*+1\r\n$3\r\nGET\r\n", "invalid multibulk length"},
		{"*01\r\n$3\r\nGET\r\n", "invalid multibulk length"},
		{"*1\r\n$1073741824\r\n", "bulk length 1073741824 exceeds the limit of 1024 bytes"},
		{"*100000000\r\n", "100000000 arguments in one command, at most 16"},
		{"*1\r\n$3\r\nGETXX", "bulk string not terminated by CRLF"},
		{"*1" + strings.Repeat("1", 40), "too big multibulk count string"},
		{"*3\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n", ""},
		{"*5\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n" + strings.Repeat("a", 1000) + "\r\n$1000\r\n", "command exceeds the limit of 4096 bytes"},
		{strings.Repeat("x", maxInline+1), "too big inline request"},
	} {
		_, err := readAll(t, strings.NewReader(c.in), testLimits)
		if c.want == "" {
			if !errors.Is(err, io.EOF) {
				t.Errorf("%.40q: err = %v, want EOF (an unterminated command)", c.in, err)
			}
			continue
		}
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: err = %v, want a protocol error with %q", c.in, err, c.want)
		}
	}
}

// A declared length is not allocated before its bytes arrive: a client that
// announces 1 GB and sends little holds the reader at little.
func TestReader_DoesNotAllocateDeclaredLengths(t *testing.T) {
	lim := Limits{MaxArgs: 16, MaxBulk: 1 << 30, MaxCommand: 2 << 30}
	in := "*2\r\n$3\r\nSET\r\n$1073741824\r\n" + strings.Repeat("a", 100)
	rd := newReader(strings.NewReader(in), lim)
	if _, _, err := rd.next(nil, true); !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want EOF", err)
	}
	if len(rd.buf) > readBufSize {
		t.Fatalf("buffer %d bytes", len(rd.buf))
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		string(encode("SET", "k", "v")), string(encode("MGET", "a", "b", "c")), "PING\r\n", "*0\r\n", "*-1\r\n",
		"*1\r\n$-1\r\n", "*2\r\n$3\r\nGET\r\n", "*1\r\n$1073741824\r\n", "$3\r\nfoo\r\n", "*1\r\n$3\r\nfoo\n\n",
		string(encode("SET", "k", "v")) + "GET k\r\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		// parse on the whole input never panics and keeps to the limits.
		argv, n, need, err := testLimits.parse(in, nil)
		if n < 0 || n > len(in) || need < 0 || (err != nil && n != 0) {
			t.Fatalf("parse = n %d need %d err %v on %d bytes", n, need, err, len(in))
		}
		if len(argv) > testLimits.MaxArgs {
			t.Fatalf("%d arguments past the limit", len(argv))
		}
		total := 0
		for _, a := range argv {
			total += len(a)
		}
		if total > testLimits.MaxCommand {
			t.Fatalf("%d argument bytes past the limit", total)
		}
		// A command that parsed re-encodes to one that parses the same.
		if n > 0 && len(argv) > 0 {
			s := make([]string, len(argv))
			for i, a := range argv {
				s[i] = string(a)
			}
			again, m, _, err := testLimits.parse(encode(s...), nil)
			if err != nil || m == 0 || len(again) != len(argv) {
				t.Fatalf("re-encoded %.200q: %v", s, err)
			}
		}
		// The reader frames the same commands whatever the read sizes.
		whole, werr := readAllQuiet(bytes.NewReader(in))
		parts, perr := readAllQuiet(&chunked{b: in, n: int(chunk%7) + 1})
		if strings.Join(flatten(whole), "\x00") != strings.Join(flatten(parts), "\x00") || (werr == nil) != (perr == nil) {
			t.Fatalf("chunked reads framed %.200q (%v), whole %.200q (%v)", parts, perr, whole, werr)
		}
	})
}

func readAllQuiet(r io.Reader) ([][]string, error) {
	rd := newReader(r, testLimits)
	var out [][]string
	for {
		argv, _, err := rd.next(nil, true)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		cmd := make([]string, len(argv))
		for i, a := range argv {
			cmd[i] = string(a)
		}
		out = append(out, cmd)
	}
}

func flatten(cmds [][]string) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, strings.Join(c, "\x01"))
	}
	return out
}

type chunked struct {
	b []byte
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

func TestParseDecimal_TakesWhatRedisTakes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "7": 7, "-1": -1, "1000": 1000,
		"9223372036854775807": math.MaxInt64, "-9223372036854775808": math.MinInt64,
	} {
		if v, ok := parseDecimal([]byte(in)); !ok || v != want {
			t.Errorf("parseDecimal(%q) = %d, %v; want %d", in, v, ok, want)
		}
	}
	for _, in := range []string{"", "-", "+1", "01", "-0", "-01", " 1", "1 ", "1a", "9223372036854775808", "-9223372036854775809", "18446744073709551616"} {
		if v, ok := parseDecimal([]byte(in)); ok {
			t.Errorf("parseDecimal(%q) = %d; want it refused", in, v)
		}
	}
}
