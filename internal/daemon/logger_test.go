package daemon

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ringcache/ringcache/internal/logx"
)

func TestNewLogger_RepeatedLinesAreRateLimited(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var out bytes.Buffer
		log, err := newLogger(Flags{Name: "n1", LogLevel: "info", LogFormat: format}, &out)
		if err != nil {
			t.Fatal(err)
		}
		for range 1000 {
			log.With("component", "memberlist").Error("Received invalid msgType (71)")
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != logx.DefaultBurst || !strings.Contains(lines[0], "n1") {
			t.Fatalf("%s: %d lines for 1000 of one message, want %d naming the node; first: %s", format, len(lines), logx.DefaultBurst, lines[0])
		}
	}
}
