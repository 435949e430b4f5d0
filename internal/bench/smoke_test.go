package bench

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// TestSmoke_EachWriteModeWritesWhereItShould runs each benchmarked mode for a
// handful of Sets and checks where the data went, so the benchmarks measure
// what they claim to: write-through rows are in PostgreSQL when the Set
// returns, write-behind rows only after a flush, cache-only rows never.
func TestSmoke_EachWriteModeWritesWhereItShould(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	const sets = 5
	run := func(t *testing.T, e *env) {
		t.Helper()
		r := drive(t, e.client, sets, key)
		if r.ops != sets {
			t.Fatalf("drove %d Sets, want %d", r.ops, sets)
		}
		for i := range int64(sets) {
			v, found, err := e.client.Get(context.Background(), ns, key(i))
			if err != nil || !found || !bytes.Equal(v, value) {
				t.Fatalf("Get %s = %q, %v, %v; want the value just set", key(i), v, found, err)
			}
		}
	}
	checkRows := func(t *testing.T, e *env, want int64) {
		t.Helper()
		if n := e.rows(t); n != want {
			t.Fatalf("ringcache_kv holds %d rows, want %d", n, want)
		}
		if want == 0 {
			return
		}
		var n int64
		e.query(t, `SELECT count(*) FROM ringcache_kv WHERE namespace = '`+ns+`' AND value = decode('`+
			hex.EncodeToString(value)+`', 'hex') AND version > 0`, &n)
		if n != want {
			t.Fatalf("%d of %d rows hold the value with a version", n, want)
		}
	}

	t.Run("write-through", func(t *testing.T) {
		e := start(t, setup{mode: strategy.WriteThrough})
		run(t, e)
		checkRows(t, e, sets)
		if got := e.writer.batches.Load(); got != sets {
			t.Errorf("%d database transactions, want one per Set (%d)", got, sets)
		}
	})
	t.Run("write-behind", func(t *testing.T) {
		// The flusher's first round runs at start, on an empty journal;
		// the next is an hour away, so rows appear only with the flush.
		e := start(t, setup{mode: strategy.WriteBehind, journal: node.JournalConfig{FlushInterval: time.Hour}})
		run(t, e)
		checkRows(t, e, 0)
		if st := e.journalStats(t); st.Pending != sets || st.Appends != sets {
			t.Fatalf("journal: %d pending, %d appends; want %d of each", st.Pending, st.Appends, sets)
		}
		e.flush(t)
		checkRows(t, e, sets)
		if st := e.journalStats(t); st.Pending != 0 || st.Flushed != sets {
			t.Fatalf("after the flush the journal has %d pending, %d flushed; want 0 and %d", st.Pending, st.Flushed, sets)
		}
	})
	t.Run("cache-only", func(t *testing.T) {
		e := start(t, setup{mode: strategy.WriteAside, pg: true})
		run(t, e)
		checkRows(t, e, 0)
	})
}
