package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/pkg/client"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

const (
	// ns is the namespace every benchmark writes.
	ns = "bench"
	// writers is the number of concurrent callers.
	writers = 50
	// valueSize is the size of every value written.
	valueSize = 100
)

// value is the payload of every Set.
var value = func() []byte {
	v := make([]byte, valueSize)
	for i := range v {
		v[i] = 'a' + byte(i%26)
	}
	return v
}()

// setup says how to start an env.
type setup struct {
	mode strategy.WriteMode
	// pg opens PostgreSQL even when the mode does not write to it (so a
	// test can check that nothing reached it).
	pg bool
	// maxConns is the backend pool size; 0 is the default (max(4, CPUs)).
	maxConns int
	// journal tunes the journal and its flusher (write-behind); the zero
	// value is the production default. Path is set by start.
	journal node.JournalConfig
}

// env is one node serving namespace ns, with what the benchmarks measure it by.
type env struct {
	node   *node.Node
	client *client.Client
	admin  pb.AdminClient
	dsn    string          // "" without PostgreSQL
	db     backend.DB      // nil without PostgreSQL
	writer *countingWriter // nil in cache-only mode
	jpath  string          // "" without a journal
	// txid0 is the journal's last transaction id before the node started.
	txid0 int
}

// start starts one node on loopback. Everything is released at tb's cleanup.
func start(tb testing.TB, s setup) *env {
	tb.Helper()
	e := &env{}
	spec := node.NamespaceSpec{Policy: strategy.Policy{Name: ns, Write: s.mode}}
	if s.mode != strategy.WriteAside || s.pg {
		e.dsn = pgtest.NewDatabase(tb) // skips when PostgreSQL is not installed
		db, err := backend.Open(context.Background(), backend.Config{Driver: backend.DriverPostgres, DSN: e.dsn, MaxConns: s.maxConns})
		if err != nil {
			tb.Fatalf("open postgres: %v", err)
		}
		e.db = db
		tb.Cleanup(func() { db.Close() })
		if s.mode != strategy.WriteAside {
			tbl, err := db.Table(backend.TableSpec{Namespace: ns}) // the generic ringcache_kv
			if err != nil {
				tb.Fatal(err)
			}
			e.writer = &countingWriter{w: tbl}
			spec.Writer = e.writer
		}
	}
	cfg := node.Config{
		Name: "bench", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		MaxMemory:  1 << 30, // no eviction during a run
		Namespaces: []node.NamespaceSpec{spec},
	}
	if s.mode == strategy.WriteBehind {
		e.jpath = filepath.Join(tb.TempDir(), "journal.db")
		e.txid0 = lastTxID(tb, createJournal(tb, e.jpath)) // creates the buckets
		cfg.Journal = s.journal
		cfg.Journal.Path = e.jpath
	}
	n, err := node.New(cfg)
	if err != nil {
		tb.Fatalf("start node: %v", err)
	}
	e.node = n
	tb.Cleanup(n.Kill)
	if e.client, err = client.New(client.Options{Seeds: []string{n.GRPCAddr()}}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.client.Close() })
	cc, err := grpc.NewClient(n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	e.admin = pb.NewAdminClient(cc)
	return e
}

// createJournal creates the journal file and its buckets, closes it and
// returns its path.
func createJournal(tb testing.TB, path string) string {
	tb.Helper()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := j.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// lastTxID returns the id of the last transaction committed to the
// (closed) journal file at path. Each read-write bbolt transaction is one
// commit: two fdatasyncs (pages, then meta page).
func lastTxID(tb testing.TB, path string) int {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		tb.Fatal(err)
	}
	return id
}

// journalCommits stops the node and returns how many commits the journal
// made since start: the group commits of Appends plus the flusher's Acks.
func (e *env) journalCommits(tb testing.TB) int {
	tb.Helper()
	e.node.Kill() // closes the journal
	return lastTxID(tb, e.jpath) - e.txid0
}

func key(i int64) string { return fmt.Sprintf("key-%07d", i) }

// result is what drive measured.
type result struct {
	ops      int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) opsPerSec() float64 { return float64(r.ops) / r.elapsed.Seconds() }

// report adds ops/s and latency percentiles to b's output.
func (r result) report(b *testing.B) {
	b.ReportMetric(r.opsPerSec(), "sets/s")
	b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
}

// drive runs total Sets from writers goroutines sharing one client (one
// HTTP/2 connection, as one service process would). Set i writes keyOf(i).
func drive(tb testing.TB, c *client.Client, total int, keyOf func(i int64) string) result {
	tb.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	var failed atomic.Bool
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range writers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, total/writers+1)
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(total) {
					break
				}
				t0 := time.Now()
				if err := c.Set(context.Background(), ns, keyOf(i), value, 0); err != nil {
					tb.Errorf("Set %s: %v", keyOf(i), err)
					failed.Store(true)
					break
				}
				mine = append(mine, time.Since(t0))
			}
			lat[w] = mine
		})
	}
	wg.Wait()
	r := result{ops: total, elapsed: time.Since(begin)}
	if failed.Load() {
		tb.FailNow()
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}

// warm opens the gRPC connection and the database connections before the
// timer starts.
func warm(tb testing.TB, e *env) {
	tb.Helper()
	drive(tb, e.client, writers, func(i int64) string { return fmt.Sprintf("warm-%d", i) })
}

// journalStats returns the node's journal and flusher counters.
func (e *env) journalStats(tb testing.TB) *pb.JournalResponse {
	tb.Helper()
	st, err := e.admin.Journal(context.Background(), &pb.JournalRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// flush writes every pending write-behind record to the database now.
func (e *env) flush(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.admin.FlushJournal(ctx, &pb.FlushJournalRequest{}); err != nil {
		tb.Fatal(err)
	}
}

// query runs sql on a fresh connection and scans one row into dst.
func (e *env) query(tb testing.TB, sql string, dst ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql).Scan(dst...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// rows returns the number of rows of namespace ns in ringcache_kv.
func (e *env) rows(tb testing.TB) int64 {
	tb.Helper()
	var n int64
	e.query(tb, `SELECT count(*) FROM ringcache_kv WHERE namespace = '`+ns+`'`, &n)
	return n
}

// requireDurablePG fails unless PostgreSQL commits are durable (fsync and
// synchronous_commit on), and logs the server version.
func (e *env) requireDurablePG(b *testing.B) {
	b.Helper()
	var syncCommit, fsync, version string
	e.query(b, `SELECT current_setting('synchronous_commit'), current_setting('fsync'), current_setting('server_version')`,
		&syncCommit, &fsync, &version)
	b.Logf("PostgreSQL %s: synchronous_commit=%s fsync=%s", version, syncCommit, fsync)
	if syncCommit != "on" || fsync != "on" {
		b.Fatalf("PostgreSQL commits are not durable (synchronous_commit=%s, fsync=%s): the comparison would be meaningless", syncCommit, fsync)
	}
}

// pgRowWrites returns the rows PostgreSQL inserted or updated in
// ringcache_kv, as its statistics count them. Backends report their counters
// when they exit, so it stops the node and closes the pool first, then polls
// until the counter settles.
func (e *env) pgRowWrites(tb testing.TB) int64 {
	tb.Helper()
	e.node.Kill()
	e.db.Close()
	var last int64 = -1
	deadline := time.Now().Add(15 * time.Second)
	for stable := 0; stable < 3 && time.Now().Before(deadline); {
		time.Sleep(300 * time.Millisecond)
		var cur int64
		e.query(tb, `SELECT COALESCE((SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'ringcache_kv'), 0)`, &cur)
		if cur == last && cur > 0 {
			stable++
		} else {
			stable = 0
		}
		last = cur
	}
	return last
}

// countingWriter counts what reaches the database: Write calls (one
// transaction each: a write-through Set, or one flusher batch) and the
// writes in them.
type countingWriter struct {
	w              strategy.Writer
	batches, total atomic.Int64
}

func (c *countingWriter) Write(ctx context.Context, ws []strategy.Write) error {
	err := c.w.Write(ctx, ws)
	if err == nil {
		c.batches.Add(1)
		c.total.Add(int64(len(ws)))
	}
	return err
}
