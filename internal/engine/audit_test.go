package engine_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/engine/enginetest"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// A batch may mix commands (a RESP pipeline of SET, DEL and GET): the
// audit log names each op's own command, and the caller's method only for
// ops that name none.
func TestExecute_TheAuditLogNamesEachOpsCommand(t *testing.T) {
	var out bytes.Buffer
	log, err := audit.New(&out, audit.Options{Key: []byte("0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(store.Config{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	e := enginetest.Alone(t, engine.Config{Self: "n1", Store: st, Versions: &hlc.Clock{}, Audit: log,
		Namespaces: []engine.NamespaceSpec{{Policy: strategy.Policy{Name: "ns", TTL: time.Hour, MaxKeyBytes: 64, MaxValueBytes: 64}, Audit: true}}})

	ops := []engine.Op{
		{Kind: engine.Set, Namespace: "ns", Key: "a", Value: []byte("1"), Method: "RESP SET"},
		{Kind: engine.Delete, Namespace: "ns", Key: "b", Method: "RESP DEL"},
		{Kind: engine.Get, Namespace: "ns", Key: "c"},
	}
	e.Execute(context.Background(), engine.Caller{Method: "RESP GET"}, ops, func(int, engine.Result) {}, nil)
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{`"RESP SET"`, `"RESP DEL"`, `"RESP GET"`}
	if len(lines) != len(want) {
		t.Fatalf("audit log:\n%s\nwant %d lines", out.String(), len(want))
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("audit line %d = %s; want the method %s", i, lines[i], w)
		}
	}
}
