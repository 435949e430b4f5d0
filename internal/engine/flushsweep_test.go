package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// The flushes of a FLUSHALL, one call per namespace, are swept in one walk
// of the store, which frees what they hid and nothing else; a later flush
// gets a walk of its own. Before, each namespace took a walk of the whole
// store.
func TestSweep_FlushesOfManyNamespacesShareOneWalk(t *testing.T) {
	st, err := store.New(store.Config{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	names := []string{"a", "b", "c", "kept"}
	var specs []NamespaceSpec
	for _, n := range names {
		specs = append(specs, NamespaceSpec{Policy: strategy.Policy{Name: n, TTL: time.Hour}})
	}
	e, err := New(Config{Self: "n1", Store: st, Versions: &hlc.Clock{}, Namespaces: specs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	const perNamespace = 100
	for _, name := range names {
		ns, err := e.Namespace(name)
		if err != nil {
			t.Fatal(err)
		}
		for k := range perNamespace {
			if err := ns.Set(context.Background(), fmt.Sprint(k), []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	flush := func(names ...string) {
		t.Helper()
		for _, name := range names {
			ns, _ := e.Namespace(name)
			if _, err := ns.Flush(""); err != nil {
				t.Fatal(err)
			}
			e.SweepFlushed(name)
		}
	}
	swept := func(entries, walks uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for st.Stats().Entries != entries || e.sweep.walks.Load() < walks {
			if time.Now().After(deadline) {
				t.Fatalf("%d entries left after %d walks; want %d after %d", st.Stats().Entries, e.sweep.walks.Load(), entries, walks)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if got := e.sweep.walks.Load(); got != walks {
			t.Fatalf("%d walks of the store, want %d", got, walks)
		}
	}

	flush("a", "b", "c")
	swept(perNamespace, 1) // kept's entries stay
	flush("kept")
	swept(0, 2)
}
