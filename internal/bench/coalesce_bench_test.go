package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

const (
	coalesceSets = 100_000
	coalesceKeys = 1_000
)

// BenchmarkCoalescing_100kSetsOver1kKeys sends 100,000 write-behind Sets
// over 1,000 keys (Set i writes key i mod 1000) from 50 goroutines, flushes
// what is left, and counts the rows written to PostgreSQL. One iteration is
// the whole workload; run it with -benchtime 1x.
//
// Metrics (per 100k Sets):
//   - rows-flushed: writes the flusher sent to PostgreSQL (its batches'
//     sizes, counted at the Writer), final flush included;
//   - pg-row-writes: n_tup_ins + n_tup_upd of ringcache_kv in
//     pg_stat_user_tables, the database's own count;
//   - batches: flusher transactions; rows/batch their mean size;
//   - rounds-by-interval: the run's length over the flush interval, the
//     number of rounds there would be if the flusher waited the interval
//     between every two rounds.
//
// The flush interval and batch size vary. With batch_size at most the number
// of hot keys the journal always holds a full batch, so the flusher never
// waits the interval (a full batch is taken as a backlog) and flushes as
// fast as PostgreSQL commits; with a batch larger than the hot set, each
// round takes every pending key and then waits.
func BenchmarkCoalescing_100kSetsOver1kKeys(b *testing.B) {
	for _, c := range []struct {
		interval time.Duration
		batch    int
	}{
		{100 * time.Millisecond, 500}, // batch_size default
		{time.Second, 500},
		{100 * time.Millisecond, 2000},
		{time.Second, 2000},
	} {
		b.Run(fmt.Sprintf("interval=%s/batch=%d", c.interval, c.batch), func(b *testing.B) {
			for range b.N {
				coalesce(b, c.interval, c.batch)
			}
		})
	}
}

func coalesce(b *testing.B, interval time.Duration, batch int) {
	b.StopTimer()
	e := start(b, setup{mode: strategy.WriteBehind, journal: node.JournalConfig{FlushInterval: interval, BatchSize: batch}})
	b.StartTimer()
	r := drive(b, e.client, coalesceSets, func(i int64) string { return key(i % coalesceKeys) })
	b.StopTimer()
	during := e.writer.total.Load()
	st := e.journalStats(b)
	e.flush(b)
	if n := e.rows(b); n != coalesceKeys {
		b.Fatalf("ringcache_kv holds %d rows of %q after the flush, want %d", n, ns, coalesceKeys)
	}
	flushed, batches := e.writer.total.Load(), e.writer.batches.Load()
	pgRows := e.pgRowWrites(b)
	r.report(b)
	b.ReportMetric(float64(flushed), "rows-flushed")
	b.ReportMetric(float64(pgRows), "pg-row-writes")
	b.ReportMetric(float64(during), "rows-during-run")
	b.ReportMetric(float64(batches), "batches")
	b.ReportMetric(float64(flushed)/float64(max(1, batches)), "rows/batch")
	b.ReportMetric(r.elapsed.Seconds()/interval.Seconds(), "rounds-by-interval")
	b.ReportMetric(float64(st.Coalesced), "coalesced")
	b.Logf("interval=%s batch=%d: %d Sets in %s; %d rows flushed in %d batches (%d during the run), PostgreSQL counted %d row writes; journal coalesced %d Sets",
		interval, batch, r.ops, r.elapsed.Round(time.Millisecond), flushed, batches, during, pgRows, st.Coalesced)
}
