package bench

import (
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// The Set benchmarks send b.N Sets of 100-byte values from 50 goroutines to
// one node over gRPC and report Sets per second and the p50/p99 latency of
// one Set as its caller sees it. The keys are distinct (the first million of
// them; runs stay below that), so write-behind gets no help from coalescing
// in the journal. Each run starts a fresh node, journal and database.

// keyspace bounds the distinct keys of the Set benchmarks (and the memory
// they take): Set i writes key i mod keyspace.
const keyspace = 1_000_000

func distinctKey(i int64) string { return key(i % keyspace) }

// BenchmarkSet_CacheOnly is a write: aside namespace: the cache alone, no
// journal, no database.
func BenchmarkSet_CacheOnly(b *testing.B) {
	e := start(b, setup{mode: strategy.WriteAside})
	warm(b, e)
	b.ResetTimer()
	r := drive(b, e.client, b.N, distinctKey)
	b.StopTimer()
	r.report(b)
}

// BenchmarkSet_WriteBehind is a durable write-behind namespace: each Set is
// in the journal file and fsync'd (group commit) before it is acknowledged;
// the flusher (defaults: 1 s interval, batches of 500) writes PostgreSQL in
// the background meanwhile, on the same two cores.
//
// Extra metrics: appends/commit is the acknowledged Sets per journal commit
// (each commit is two fdatasyncs); the commits include the flusher's Acks,
// so the figure is a lower bound. flushed/s is the rate at which the flusher
// wrote rows to PostgreSQL during the run, and backlog the Sets still
// pending in the journal when the last one was acknowledged.
func BenchmarkSet_WriteBehind(b *testing.B) { benchWriteBehind(b, setup{mode: strategy.WriteBehind}) }

// BenchmarkSet_WriteBehind_Diag is a diagnostic for docs/benchmarks.md, not
// a target: the same Sets with the flusher idle during the run (its first
// round runs at start, the next an hour later), to separate the journal's
// cost from the flusher's.
func BenchmarkSet_WriteBehind_Diag(b *testing.B) {
	b.Run("flusher-idle", func(b *testing.B) {
		benchWriteBehind(b, setup{mode: strategy.WriteBehind, journal: node.JournalConfig{FlushInterval: time.Hour}})
	})
}

func benchWriteBehind(b *testing.B, s setup) {
	e := start(b, s)
	warm(b, e)
	before := e.journalStats(b)
	b.ResetTimer()
	r := drive(b, e.client, b.N, distinctKey)
	b.StopTimer()
	after := e.journalStats(b)
	r.report(b)
	appends := after.Appends - before.Appends
	b.ReportMetric(float64(after.Flushed-before.Flushed)/r.elapsed.Seconds(), "flushed/s")
	b.ReportMetric(float64(after.Pending), "backlog")
	b.ReportMetric(float64(appends)/float64(max(1, e.journalCommits(b))), "appends/commit")
}

// BenchmarkSet_WriteThrough is a write-through namespace: each Set is one
// PostgreSQL transaction (a versioned upsert into ringcache_kv), committed
// durably (synchronous_commit on, checked) before the cache is updated and
// the Set acknowledged. The pool has the backend's default size,
// max(4, CPUs): at most 4 of the 50 callers are in the database at once.
func BenchmarkSet_WriteThrough(b *testing.B) { benchWriteThrough(b, 0) }

// BenchmarkSet_WriteThrough_Pool50 is BenchmarkSet_WriteThrough with a pool
// of 50 connections, one per caller, so PostgreSQL can group the commits of
// concurrent transactions into one WAL flush.
func BenchmarkSet_WriteThrough_Pool50(b *testing.B) { benchWriteThrough(b, writers) }

func benchWriteThrough(b *testing.B, maxConns int) {
	e := start(b, setup{mode: strategy.WriteThrough, maxConns: maxConns})
	e.requireDurablePG(b)
	warm(b, e)
	b.ResetTimer()
	r := drive(b, e.client, b.N, distinctKey)
	b.StopTimer()
	r.report(b)
}
