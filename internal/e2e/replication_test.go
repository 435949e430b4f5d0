package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/pgtest"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Replicated write-behind against real ringcached processes and a real
// PostgreSQL: a node killed with kill -9 whose data directory is deleted
// loses no acknowledged write, and hides none — the survivors read and
// flush it — with the database up or down; an old owner that comes back
// with its old disk after a takeover sets no row back; a replica that does
// not answer fails a write or has it counted, as min_replicas says
// (replication_degraded_test.go). Every
// namespace here uses the default replication (2 copies, both needed).

// lose is one round of a kill-and-lose-the-disk test.
type lose struct {
	f      *fleet
	dsn    string
	round  int
	victim *proc
}

// survivors returns the fleet's nodes but the victim.
func (l lose) survivors() []*proc {
	var out []*proc
	for _, p := range l.f.all {
		if p != l.victim {
			out = append(out, p)
		}
	}
	return out
}

// killAndWipe kills the victim with SIGKILL and deletes its data directory.
func (l lose) killAndWipe(t *testing.T) {
	kill9(t, l.victim)
	if err := os.RemoveAll(filepath.Join(l.f.dir, l.victim.name)); err != nil {
		t.Fatalf("delete the data directory of %s: %v", l.victim.name, err)
	}
}

// readBack reads every acknowledged key of res through conn (GetMany, in
// batches) and returns how many hold their last acknowledged value or a
// later one sent, and up to ten problems.
func readBack(t *testing.T, conn *nodeConn, res loadResult) (ok int, problems []string, n int) {
	t.Helper()
	var keys []string
	for k, s := range res.acked {
		if s > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for start := 0; start < len(keys); start += 500 {
		batch := keys[start:min(len(keys), start+500)]
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, err := conn.cache.GetMany(ctx, &pb.GetManyRequest{Namespace: ordersNS, Keys: batch})
		cancel()
		if err != nil {
			t.Fatalf("GetMany through %s: %v", conn.name, err)
		}
		for i, r := range resp.GetResults() {
			k := batch[i]
			want, sent := res.acked[k], res.attempted[k]
			got := parseSeq(k, r.GetValue())
			switch {
			case r.GetErrorCode() != 0:
				n++
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf("%s via %s: error %s", k, conn.name, r.GetErrorMessage()))
				}
			case !r.GetFound() || got < want || got > sent:
				n++
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf("%s via %s: acknowledged #%d, read #%d (found %v)", k, conn.name, want, got, r.GetFound()))
				}
			default:
				ok++
			}
		}
	}
	return ok, problems, n
}

// journalFlushCLI runs `ringcachectl journal flush` against addr.
func journalFlushCLI(t *testing.T, addr string) string {
	t.Helper()
	res, err := ctl(addr, nil, "--timeout", "60s", "journal", "flush")
	if err != nil || res.exitCode != 0 {
		t.Fatalf("ringcachectl journal flush: %v, exit %d\n%s%s", err, res.exitCode, res.stdout, res.stderr)
	}
	return res.stdout
}

// waitInSync polls until every node of conns reports its pending records
// fully replicated.
func waitInSync(t *testing.T, conns []*nodeConn) {
	t.Helper()
	eventually(t, drainTimeout, "every node's pending writes have their replicas", func() error {
		for _, c := range conns {
			j, err := c.journal()
			if err != nil {
				return err
			}
			if !j.ReplicationInSync {
				return fmt.Errorf("%s is re-replicating", c.name)
			}
		}
		return nil
	})
}

// killRounds runs rounds of: a load of 50 writers with flushing held back;
// kill -9 of one node (another each round) and deletion of its data
// directory, with PostgreSQL down during the kill when dbDown; reads of
// every acknowledged key through every survivor once their rings have
// converged; `ringcachectl journal flush` (after PostgreSQL is back); a
// check of PostgreSQL; and a restart of the victim on an empty directory.
func killRounds(t *testing.T, rounds int, dbDown bool) {
	const writers = 50
	srv := pgtest.Start(t)
	dsn := srv.NewDatabase(t)
	var pg *pgControl
	if dbDown {
		pg = controlPG(t, srv)
	}
	f := newFleet(t, "n1", "n2", "n3")
	hold := f.writeConfig("hold.yaml", ordersConfig(dsn, holdBack))
	f.launch(hold, nil, f.all...)
	f.waitUp(3, f.all...)
	testStart := time.Now()
	var totalAcked, totalStored int
	for round := 1; round <= rounds; round++ {
		roundStart := time.Now()
		l := lose{f: f, dsn: dsn, round: round, victim: f.all[(round-1)%len(f.all)]}
		prefix := fmt.Sprintf("lose%02d/", round)
		if dbDown {
			prefix = fmt.Sprintf("lose-down%02d/", round)
			pg.Stop()
		}
		conns := dial(t, f.all...)
		takenBefore := map[string]uint64{}
		for _, c := range conns {
			if j, err := c.journal(); err == nil {
				takenBefore[c.name] = j.TakenOver
			}
		}
		var atKill string
		res := runLoad(t, conns, ordersNS, prefix, writers, 2000+uint64(round), []loadEvent{{
			AtAcks: writesPerRound(round), Name: "kill -9 " + l.victim.name + " and delete its data directory",
			Fn: func() { atKill = journals(conns); l.killAndWipe(t) },
		}})
		closeAll(conns)
		if len(res.earlyErrors) > 0 {
			t.Errorf("round %d: Sets failed before the kill: %v", round, res.earlyErrors)
		}
		killedAt := time.Now()
		survivors := l.survivors()
		f.waitSurvivors(2, survivors...)
		converged := time.Since(killedAt)
		sconns := dial(t, survivors...)
		var reads []string
		for _, c := range sconns {
			ok, problems, bad := readBack(t, c, res)
			reads = append(reads, fmt.Sprintf("%s %d/%d", c.name, ok, ok+bad))
			if bad > 0 {
				t.Fatalf("round %d: through %s, %d acknowledged keys do not read their acknowledged value after %s died with its disk:\n  %s",
					round, c.name, bad, l.victim.name, strings.Join(problems, "\n  "))
			}
		}
		var taken uint64
		for _, c := range sconns {
			if j, err := c.journal(); err == nil {
				taken += j.TakenOver - takenBefore[c.name]
			}
		}
		if dbDown {
			pg.Start()
		}
		journalFlushCLI(t, survivors[0].grpcAddr)
		rows := kvRows(t, dsn, ordersNS, prefix)
		v := res.check(rows)
		t.Logf("round %d: killed %s (and its data dir) after %4d acked Sets (%4d keys; %d Sets failed from then on; just before: %s); rings converged in %s; survivors read %s acked keys right; took over %d records; after journal flush PostgreSQL holds %4d/%4d acked keys (%d exactly the last ack); round %s",
			round, l.victim.name, res.ackedSets, v.ackedKeys, res.failedSets, atKill, converged.Round(time.Millisecond),
			strings.Join(reads, ", "), taken, v.stored, v.ackedKeys, v.exact, time.Since(roundStart).Round(time.Millisecond))
		if v.nProblems > 0 {
			t.Fatalf("round %d: %d acknowledged writes lost or stale in PostgreSQL, e.g.:\n  %s", round, v.nProblems, strings.Join(v.problems, "\n  "))
		}
		if taken == 0 {
			t.Errorf("round %d: the survivors took nothing over from %s", round, l.victim.name)
		}
		totalAcked += v.ackedKeys
		totalStored += v.stored
		closeAll(sconns)
		if round < rounds { // the victim comes back empty; the next round kills another node
			f.launch(hold, nil, l.victim)
			f.waitUp(3, f.all...)
			conns := dial(t, f.all...)
			waitInSync(t, conns)
			closeAll(conns)
		}
	}
	t.Logf("%d rounds in %s: %d acknowledged keys, %d in PostgreSQL with their last acknowledged value or a later one",
		rounds, time.Since(testStart).Round(time.Millisecond), totalAcked, totalStored)
}

func TestReplication_Kill9AndLostDiskLoseNoAcknowledgedWrite(t *testing.T) {
	killRounds(t, 5, false)
}

func TestReplication_Kill9AndLostDiskWithTheDatabaseDown(t *testing.T) {
	killRounds(t, 5, true)
}

func TestReplication_OldOwnerBackWithItsOldDiskSetsNoRowBack(t *testing.T) {
	const keys = 300
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1", "n2", "n3")
	n1 := f.all[0]
	hold := f.writeConfig("hold.yaml", ordersConfig(dsn, holdBack))
	fast := f.writeConfig("fast.yaml", ordersConfig(dsn, flushFast))
	f.launch(hold, nil, f.all...)
	f.waitUp(3, f.all...)
	conns := dial(t, f.all...)
	ctx := context.Background()
	set := func(c *nodeConn, key string, seq int) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := c.cache.Set(cctx, &pb.SetRequest{Namespace: ordersNS, Key: key, Value: seqValue(key, seq)}); err != nil {
			t.Fatalf("Set %s #%d via %s: %v", key, seq, c.name, err)
		}
	}
	key := func(i int) string { return fmt.Sprintf("back/%04d", i) }
	for i := range keys {
		set(conns[i%3], key(i), 1)
	}
	j1, err := conns[0].journal()
	if err != nil {
		t.Fatal(err)
	}
	kill9(t, n1) // its disk stays
	closeAll(conns)
	f.waitSurvivors(2, f.all[1:]...)
	sconns := dial(t, f.all[1:]...)
	for i := range keys {
		set(sconns[i%2], key(i), 2)
	}
	journalFlushCLI(t, f.all[1].grpcAddr)
	before := kvRows(t, dsn, ordersNS, "back/")
	// n1 comes back with its journal of #1 writes and flushes them at once.
	f.launch(fast, nil, n1)
	f.waitUp(3, f.all...)
	conns = dial(t, f.all...)
	js := waitJournalsEmpty(t, drainTimeout, conns[:1])
	rows := kvRows(t, dsn, ordersNS, "back/")
	var back []string
	for i := range keys {
		if r := rows[key(i)]; parseSeq(key(i), r.value) != 2 {
			back = append(back, fmt.Sprintf("%s holds %q (was #%d before n1 came back)", key(i), r.value, parseSeq(key(i), before[key(i)].value)))
		}
	}
	t.Logf("n1 held %d pending writes when killed; after its restart it flushed %d (replayed), and PostgreSQL holds #2 for %d/%d keys",
		j1.Pending, js[0].Flushed, keys-len(back), keys)
	if j1.Pending == 0 {
		t.Fatal("n1 held no pending writes when it was killed: the test exercised nothing")
	}
	if len(back) > 0 {
		t.Fatalf("%d rows went back to an older value after the old owner returned:\n  %s", len(back), strings.Join(back[:min(10, len(back))], "\n  "))
	}
	for _, c := range conns {
		ok, problems, bad := readBack(t, c, loadResult{acked: seqs(keys, key, 2), attempted: seqs(keys, key, 2)})
		if bad > 0 {
			t.Fatalf("through %s, %d of %d keys do not read #2:\n  %s", c.name, bad, ok+bad, strings.Join(problems, "\n  "))
		}
	}
}

func seqs(n int, key func(int) string, seq int) map[string]int {
	m := map[string]int{}
	for i := range n {
		m[key(i)] = seq
	}
	return m
}
