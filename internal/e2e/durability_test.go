package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The durability claims of write-behind, against real ringcached processes
// and a real PostgreSQL: an acknowledged Set is on disk before the ack and
// reaches the database after any crash and restart (kill -9, with the
// database up or down); a graceful stop flushes everything before the
// process exits; and the versioned upsert keeps the newest write when an
// older owner flushes late.

const (
	ordersNS = "orders"
	// holdBack keeps the flusher from flushing during a load: it flushes a
	// batch per interval and loops at once only after a full batch, and the
	// loads stay well under batch_size 10000.
	holdBack = time.Hour
	// flushFast is the interval of restarted nodes.
	flushFast = 50 * time.Millisecond
	// drainTimeout bounds the wait for restarted nodes to empty their journals.
	drainTimeout = 60 * time.Second
)

// ordersConfig is a cluster whose namespace orders is read-through and
// write-behind on PostgreSQL's generic table.
func ordersConfig(dsn string, flushInterval time.Duration) string {
	return fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  orders:
    backend: main
    read: through
    write: behind
    write_behind: {flush_interval: %s, batch_size: 10000}
`, dsn, flushInterval)
}

// writesPerRound returns the acknowledged Sets after which round r kills
// the nodes: a few hundred to about two thousand.
func writesPerRound(r int) int { return 300 + (r*577)%1700 }

func TestDurability_Kill9DuringWriteBehindLoad(t *testing.T) {
	const rounds, writers = 10, 50
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1", "n2", "n3")
	hold := f.writeConfig("hold.yaml", ordersConfig(dsn, holdBack))
	fast := f.writeConfig("fast.yaml", ordersConfig(dsn, flushFast))
	f.launch(hold, nil, f.all...)
	f.waitUp(3, f.all...)

	var totalAcked, totalStored int
	for round := 1; round <= rounds; round++ {
		roundStart := time.Now()
		prefix := fmt.Sprintf("r%02d/", round)
		conns := dial(t, f.all...)
		target := writesPerRound(round)
		var atKill string
		res := runLoad(t, conns, ordersNS, prefix, writers, uint64(round), []loadEvent{
			{AtAcks: target, Name: "kill -9 all nodes", Fn: func() { atKill = journals(conns); kill9(t, f.all...) }},
		})
		closeAll(conns)
		if len(res.earlyErrors) > 0 {
			t.Errorf("round %d: Sets failed before the kill: %v", round, res.earlyErrors)
		}
		before := len(kvRows(t, dsn, ordersNS, prefix))

		// Restart in place with a short flush interval: the journals replay.
		restart := time.Now()
		f.launch(fast, nil, f.all...)
		conns = dial(t, f.all...)
		js := waitJournalsEmpty(t, drainTimeout, conns)
		drained := time.Since(restart)
		closeAll(conns)
		var replayed uint64
		for _, j := range js {
			replayed += j.Flushed
			if j.DeadLetters != 0 {
				t.Errorf("round %d: %s has %d dead letters", round, j.Node, j.DeadLetters)
			}
		}
		rows := kvRows(t, dsn, ordersNS, prefix)
		v := res.check(rows)
		t.Logf("round %2d: %4d Sets acked (%4d keys), kill -9 at %.2fs (just before: %s; %d Sets failed from then on); rows before restart %d; replayed %4d; stored %4d/%4d acked keys (%d exactly the last ack, %d a later unacked write); drained in %s; round %s",
			round, res.ackedSets, v.ackedKeys, res.eventAt[0], atKill, res.failedSets, before, replayed,
			v.stored, v.ackedKeys, v.exact, v.stored-v.exact, drained.Round(time.Millisecond), time.Since(roundStart).Round(time.Millisecond))
		if v.nProblems > 0 {
			t.Fatalf("round %d: %d acknowledged writes lost or stale, e.g.:\n  %s", round, v.nProblems, strings.Join(v.problems, "\n  "))
		}
		totalAcked += v.ackedKeys
		totalStored += v.stored

		if round < rounds {
			// The journals are empty: a crash loses nothing. Back to held-back flushing.
			kill9(t, f.all...)
			f.launch(hold, nil, f.all...)
			f.waitUp(3, f.all...)
		}
	}
	t.Logf("%d rounds: %d acknowledged keys, %d stored with their last acknowledged value", rounds, totalAcked, totalStored)
}

func TestDurability_Kill9WithDatabaseDown(t *testing.T) {
	const rounds, writers = 4, 50
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	pg := controlPG(t, srv)
	f := newFleet(t, "n1", "n2", "n3")
	// The flusher runs every 50 ms, so it keeps failing against the
	// stopped database during the load.
	fast := f.writeConfig("fast.yaml", ordersConfig(dsn, flushFast))
	f.launch(fast, nil, f.all...)
	f.waitUp(3, f.all...)

	for round := 1; round <= rounds; round++ {
		roundStart := time.Now()
		prefix := fmt.Sprintf("down%02d/", round)
		target := writesPerRound(round)
		var atKill string
		var conns []*nodeConn
		kill := loadEvent{AtAcks: target, Name: "kill -9 all nodes", Fn: func() { atKill = journals(conns); kill9(t, f.all...) }}
		var events []loadEvent
		var how string
		var stopTook time.Duration
		if round%2 == 1 {
			how = "database down before the load"
			stopTook = pg.Stop()
			events = []loadEvent{kill}
		} else {
			how = "database stopped mid-load"
			events = []loadEvent{{AtAcks: target / 3, Name: "stop PostgreSQL", Fn: func() { stopTook = pg.Stop() }}, kill}
		}
		conns = dial(t, f.all...)
		res := runLoad(t, conns, ordersNS, prefix, writers, 1000+uint64(round), events)
		closeAll(conns)
		if len(res.earlyErrors) > 0 {
			t.Errorf("round %d: Sets failed before the kill: %v", round, res.earlyErrors)
		}

		startTook := pg.Start()
		restart := time.Now()
		f.launch(fast, nil, f.all...)
		conns = dial(t, f.all...)
		js := waitJournalsEmpty(t, drainTimeout, conns)
		drained := time.Since(restart)
		closeAll(conns)
		for _, j := range js {
			if j.DeadLetters != 0 {
				t.Errorf("round %d: %s has %d dead letters", round, j.Node, j.DeadLetters)
			}
		}
		v := res.check(kvRows(t, dsn, ordersNS, prefix))
		t.Logf("round %d (%s): %4d Sets acked (%4d keys), kill -9 at %.2fs (just before: %s; %d Sets failed from then on); stored %4d/%4d acked keys (%d exactly the last ack); pg stop %s, start %s; drained %s after restart; round %s",
			round, how, res.ackedSets, v.ackedKeys, res.eventAt[len(res.eventAt)-1], atKill, res.failedSets,
			v.stored, v.ackedKeys, v.exact, stopTook.Round(time.Millisecond), startTook.Round(time.Millisecond),
			drained.Round(time.Millisecond), time.Since(roundStart).Round(time.Millisecond))
		if v.nProblems > 0 {
			t.Fatalf("round %d: %d acknowledged writes lost or stale, e.g.:\n  %s", round, v.nProblems, strings.Join(v.problems, "\n  "))
		}
		if round < rounds {
			f.waitUp(3, f.all...)
		}
	}
}

func TestDurability_GracefulStopFlushesEverything(t *testing.T) {
	const n, writers = 2000, 20
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1", "n2", "n3")
	f.launch(f.writeConfig("hold.yaml", ordersConfig(dsn, holdBack)), nil, f.all...)
	f.waitUp(3, f.all...)

	conns := dial(t, f.all...)
	const prefix = "graceful/"
	errs := make(chan error, writers)
	start := time.Now()
	for w := range writers {
		go func() {
			for i := w; i < n; i += writers {
				key := fmt.Sprintf("%s%05d", prefix, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := conns[i%len(conns)].cache.Set(ctx, &pb.SetRequest{Namespace: ordersNS, Key: key, Value: seqValue(key, 1)})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("set %s: %w", key, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	wrote := time.Since(start)
	var pending uint64
	for _, c := range conns {
		j, err := c.journal()
		if err != nil {
			t.Fatal(err)
		}
		pending += j.Pending
	}
	closeAll(conns)
	before := len(kvRows(t, dsn, ordersNS, prefix))

	took := terminate(t, 30*time.Second, f.all...)
	for _, p := range f.all {
		if pending, dead := f.journalOnDisk(p); pending != 0 || dead != 0 {
			t.Errorf("%s exited with %d writes pending and %d dead letters in its journal file:\n%s", p.name, pending, dead, p.log())
		}
	}
	rows := kvRows(t, dsn, ordersNS, prefix)
	var exact int
	for i := range n {
		key := fmt.Sprintf("%s%05d", prefix, i)
		if r, ok := rows[key]; ok && parseSeq(key, r.value) == 1 {
			exact++
		}
	}
	t.Logf("%d Sets acknowledged in %s; journals held %d pending, database %d rows before SIGTERM; all nodes exited 0 after SIGTERM (%v); database holds %d/%d",
		n, wrote.Round(time.Millisecond), pending, before, took, exact, n)
	if exact != n || len(rows) != n {
		t.Fatalf("after a graceful stop the database holds %d of %d acknowledged writes (%d rows)", exact, n, len(rows))
	}
}

func TestDurability_OrderingAcrossOwnershipChange(t *testing.T) {
	const nKeys, phase1 = 8, 20
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1", "n2", "n3")
	n1, n2, n3 := f.all[0], f.all[1], f.all[2]
	// The old owner holds its writes back; the new owner flushes at once.
	hold := f.writeConfig("hold.yaml", ordersConfig(dsn, holdBack))
	fast := f.writeConfig("fast.yaml", ordersConfig(dsn, flushFast))
	f.launch(hold, f.gossip[:2], n1, n2)
	f.waitUp(2, n1, n2)
	conns := dial(t, n1, n2)
	ctx := context.Background()
	// Keys that n1 owns among {n1, n2} and n3 takes over: the coordinator
	// derives the next table from the current one (ring.Rebalance).
	two := liveTable(t, conns[0])
	three, err := ring.Rebalance(two, []ring.Member{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := 0; len(keys) < nKeys; k++ {
		key := fmt.Sprintf("moving/acct-%d", k)
		rk := strategy.StoreKey(ordersNS, key)
		if two.Owner(rk).Name == "n1" && three.Owner(rk).Name == "n3" {
			keys = append(keys, key)
		}
	}
	for _, key := range keys {
		loc, err := conns[1].admin.Locate(ctx, &pb.LocateRequest{Namespace: ordersNS, Key: key})
		if err != nil || loc.Owner != "n1" {
			t.Fatalf("locate %s on n2 = %v, %v; want owner n1", key, loc, err)
		}
	}

	// Per key, one writer whose Sets are strictly sequential.
	type keyLog struct {
		acked, sent int
		lastAckAt   time.Duration
	}
	logs := make([]keyLog, nKeys)
	set := func(i int, c *nodeConn) {
		logs[i].sent++
		seq := logs[i].sent
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := c.cache.Set(cctx, &pb.SetRequest{Namespace: ordersNS, Key: keys[i], Value: seqValue(keys[i], seq)}); err == nil {
			logs[i].acked = seq
		}
	}
	// Phase 1: through n1, the owner; held in n1's journal.
	for i := range keys {
		for range phase1 {
			set(i, conns[0])
		}
		if logs[i].acked != phase1 {
			t.Fatalf("%s: %d of %d Sets acknowledged through its owner n1", keys[i], logs[i].acked, phase1)
		}
	}
	if rows := kvRows(t, dsn, ordersNS, "moving/"); len(rows) != 0 {
		t.Logf("note: %d rows flushed by n1 before the ownership change", len(rows))
	}

	// Phase 2: n3 joins and takes the keys over while the writers keep
	// writing through n1 and n2 alternately. The writers stop at staggered
	// points: the first keys during the ownership change, the last ones
	// after every node agrees n3 owns them.
	start := time.Now()
	f.launch(fast, nil, n3)
	converged := make(chan time.Duration, 1)
	c3 := dial(t, n3)[0]
	go func() {
		for {
			ok := true
			for _, c := range append([]*nodeConn{c3}, conns...) {
				for _, key := range keys {
					lctx, cancel := context.WithTimeout(ctx, time.Second)
					loc, err := c.admin.Locate(lctx, &pb.LocateRequest{Namespace: ordersNS, Key: key})
					cancel()
					if err != nil || loc.Owner != "n3" {
						ok = false
					}
				}
			}
			if ok {
				converged <- time.Since(start)
				return
			}
			if time.Since(start) > formTimeout {
				converged <- -1
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	var convergedAt time.Duration
	done := make(chan int, nKeys)
	allAgree := make(chan struct{})
	for i := range keys {
		go func() {
			// Key i stops writing i*40ms after n3 starts (about when the
			// rings change), or, for the last half of the keys, 20 Sets
			// after the rings agree.
			stopAt := time.Duration(i) * 40 * time.Millisecond
			after := -1
			for j := 0; ; j++ {
				set(i, conns[j%2])
				logs[i].lastAckAt = time.Since(start)
				if i < nKeys/2 && time.Since(start) >= stopAt {
					break
				}
				if i >= nKeys/2 {
					select {
					case <-allAgree:
						if after < 0 {
							after = j
						}
					default:
					}
					if after >= 0 && j >= after+20 {
						break
					}
				}
			}
			done <- i
		}()
	}
	convergedAt = <-converged
	if convergedAt < 0 {
		t.Fatalf("the nodes did not agree within %s that n3 owns the moved keys", formTimeout)
	}
	close(allAgree)
	for range keys {
		<-done
	}
	f.waitUp(3, n1, n2, n3)
	// n3 flushes its writes; n1 still holds its older ones.
	js := waitJournalsEmpty(t, drainTimeout, []*nodeConn{c3})
	j1, err := conns[0].journal()
	if err != nil {
		t.Fatal(err)
	}
	mid := kvRows(t, dsn, ordersNS, "moving/")
	var newestBeforeStop int
	for i, key := range keys {
		if r, ok := mid[key]; ok && parseSeq(key, r.value) >= logs[i].acked {
			newestBeforeStop++
		}
	}
	// Stop the new owner first, the old owner last: n1 flushes its older
	// versions of the keys after n3's newer ones are in the database.
	took := terminate(t, 30*time.Second, n3)
	for name, d := range terminate(t, 30*time.Second, n2) {
		took[name] = d
	}
	for name, d := range terminate(t, 30*time.Second, n1) {
		took[name] = d
	}
	rows := kvRows(t, dsn, ordersNS, "moving/")
	res := loadResult{acked: map[string]int{}, attempted: map[string]int{}}
	for i, key := range keys {
		res.acked[key], res.attempted[key] = logs[i].acked, logs[i].sent
		r := rows[key]
		t.Logf("%s: %3d Sets sent, last acked #%d at %s after n3 started; row holds #%d (version %d)",
			key, logs[i].sent, logs[i].acked, logs[i].lastAckAt.Round(time.Millisecond), parseSeq(key, r.value), r.version)
	}
	for _, p := range f.all {
		if pending, dead := f.journalOnDisk(p); pending != 0 || dead != 0 {
			t.Errorf("%s exited with %d writes pending and %d dead letters in its journal file:\n%s", p.name, pending, dead, p.log())
		}
	}
	t.Logf("rings agreed %s after n3 started; n3 appended %d and flushed %d; n1 appended %d (%d in phase 1, the rest as owner after n3 started), held %d pending when n3 was stopped; %d/%d keys newest in the database before the stops; stop times %v",
		convergedAt.Round(time.Millisecond), js[0].Appends, js[0].Flushed, j1.Appends, nKeys*phase1, j1.Pending, newestBeforeStop, nKeys, took)
	if j1.Pending == 0 {
		t.Errorf("n1 held no pending writes when the new owner stopped: the late flush of older versions was not exercised")
	}
	if v := res.check(rows); v.nProblems > 0 {
		t.Fatalf("%d keys do not hold their last acknowledged value after the old owner flushed late:\n  %s", v.nProblems, strings.Join(v.problems, "\n  "))
	}
}

func TestDurability_PoisonWriteBecomesADeadLetter(t *testing.T) {
	const n, poison = 20, 7
	dsn := pgtest.NewDatabase(t)
	pgExec(t, dsn, `CREATE TABLE items (
	id      TEXT PRIMARY KEY,
	body    TEXT NOT NULL CHECK (body NOT LIKE 'poison%'),
	version BIGINT NOT NULL)`)
	f := newFleet(t, "n1")
	f.launch(f.writeConfig("items.yaml", fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  items:
    backend: main
    read: aside
    write: behind
    upsert_sql: "INSERT INTO items (id, body, version) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = excluded.body, version = excluded.version WHERE items.version < excluded.version"
    write_behind: {flush_interval: 50ms}
`, dsn)), nil, f.all...)
	f.waitUp(1, f.all...)
	c := dial(t, f.all...)[0]
	ctx := context.Background()
	body := func(i int) string {
		if i == poison {
			return fmt.Sprintf("poison-%d", i)
		}
		return fmt.Sprintf("body-%d", i)
	}
	for i := range n {
		if _, err := c.cache.Set(ctx, &pb.SetRequest{Namespace: "items", Key: fmt.Sprintf("item-%02d", i), Value: []byte(body(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var j *pb.JournalResponse
	eventually(t, drainTimeout, "the journal holds only the poison write, as a dead letter", func() error {
		var err error
		if j, err = c.journal(); err != nil {
			return err
		}
		if j.Pending != 0 || j.DeadLetters != 1 {
			return fmt.Errorf("%d pending, %d dead letters", j.Pending, j.DeadLetters)
		}
		return nil
	})
	dl, err := c.admin.DeadLetters(ctx, &pb.DeadLettersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dl.DeadLetters) != 1 {
		t.Fatalf("DeadLetters = %v, want the poison write alone", dl.DeadLetters)
	}
	d := dl.DeadLetters[0]
	wantKey := fmt.Sprintf("item-%02d", poison)
	if d.Namespace != "items" || d.Key != wantKey || d.Attempts < 1 || !strings.Contains(d.LastError, "items_body_check") {
		t.Fatalf("dead letter = %+v, want items/%s rejected by the check constraint items_body_check", d, wantKey)
	}
	t.Logf("dead letter: %s/%s after %d attempts: %s", d.Namespace, d.Key, d.Attempts, d.LastError)
	got := map[string]string{}
	pgRows(t, dsn, `SELECT id, body FROM items`, func(id, body string) { got[id] = body })
	for i := range n {
		key := fmt.Sprintf("item-%02d", i)
		switch b, ok := got[key]; {
		case i == poison && ok:
			t.Errorf("the poison write reached the database: %s = %q", key, b)
		case i != poison && b != body(i):
			t.Errorf("%s = %q (present %v), want %q", key, b, ok, body(i))
		}
	}
	t.Logf("database holds %d of %d writes; the poison one is a dead letter (journal: %d flushed, %d flush failures)", len(got), n, j.Flushed, j.FlushFailures)
}

// liveTable returns the partition table a node routes by, from its Admin
// Ring RPC.
func liveTable(t *testing.T, c *nodeConn) *ring.Ring {
	t.Helper()
	resp, err := c.admin.Ring(context.Background(), &pb.RingRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ms []ring.Member
	index := map[string]uint32{}
	for i, m := range resp.Members {
		ms = append(ms, ring.Member{Name: m.Name, Addr: m.GrpcAddr})
		index[m.Name] = uint32(i)
	}
	owners := make([]uint32, len(resp.PartitionOwners))
	for p, o := range resp.PartitionOwners {
		owners[p] = index[o]
	}
	r, err := ring.FromOwners(ring.Config{}, ms, owners, resp.Version)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
