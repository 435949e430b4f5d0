package membership

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestSlogWriter_LevelFromPrefixAndPrefixDropped(t *testing.T) {
	for line, want := range map[string]string{
		"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n": `level=DEBUG msg="memberlist: Stream connection from=127.0.0.1:1"`,
		"[WARN] memberlist: Was able to connect to n2\n":           `level=WARN msg="memberlist: Was able to connect to n2"`,
		"[ERR] memberlist: Failed to send ping\n":                  `level=ERROR msg="memberlist: Failed to send ping"`,
		"memberlist: no prefix\n":                                  `level=DEBUG msg="memberlist: no prefix"`,
	} {
		var buf bytes.Buffer
		w := slogWriter{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); !strings.Contains(got, want) {
			t.Errorf("%q logged as %q, want it to contain %q", line, got, want)
		}
	}
}
