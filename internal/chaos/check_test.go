package chaos

import (
	"strings"
	"testing"
	"time"
)

// The checker on hand-made histories: each check must fire on the
// anomaly it names and stay quiet on the legal look-alike.

const s = time.Second

func write(client int, value string, invoke, complete time.Duration, res Result) Op {
	return Op{Client: client, NS: NSWriteThrough, Key: "r000-b00", Kind: Write, Value: value, Invoke: invoke, Complete: complete, Result: res}
}

func read(client int, value string, invoke, complete time.Duration) Op {
	return Op{Client: client, NS: NSWriteThrough, Key: "r000-b00", Kind: Read, Value: value, Found: value != "", Invoke: invoke, Complete: complete, Result: OK}
}

// outcome is one kill round from 10 s to 20 s (converged at 20 s) over ops.
func outcome(db map[string]string, ops ...Op) *Outcome {
	return &Outcome{
		Nodes:  3,
		Rounds: []Round{{Index: 0, Nemesis: NemesisKill, Victim: "n1", Inject: 10 * s, Detected: 12 * s, Heal: 15 * s, Converged: 20 * s, End: 30 * s}},
		Ops:    ops,
		DB:     map[string]map[string]string{NSWriteThrough: db},
	}
}

func findings(rep *Report, check string) int {
	n := 0
	for _, f := range rep.Findings {
		if f.Check == check {
			n += f.Count
		}
	}
	return n
}

func TestCheck_LostWrite(t *testing.T) {
	ops := []Op{write(1, "c1.1", 1*s, 2*s, OK), write(1, "c1.2", 3*s, 4*s, OK)}
	rep := Check(outcome(map[string]string{"r000-b00": "c1.1"}, ops...))
	if got := findings(rep, CheckLost); got != 1 {
		t.Fatalf("database holds c1.1 after c1.2 was acknowledged: %d lost writes found, want 1: %v", got, rep.Findings)
	}
	if rep.Rows[0].Lost != 1 || rep.Rows[0].Acked != 2 {
		t.Fatalf("row = %+v, want 2 acknowledged, 1 lost", rep.Rows[0])
	}
	rep = Check(outcome(nil, ops...))
	if got := findings(rep, CheckLost); got != 2 {
		t.Fatalf("database holds nothing: %d lost writes found, want 2", got)
	}
}

func TestCheck_UnacknowledgedWriteMayWin(t *testing.T) {
	// c2.1 timed out: it may take effect after c1.2, so the database may
	// hold it; and a write concurrent with the last ack may win too.
	ops := []Op{write(1, "c1.1", 1*s, 2*s, OK), write(2, "c2.1", 1500*time.Millisecond, 2500*time.Millisecond, Unknown), write(1, "c1.2", 3*s, 4*s, OK)}
	if rep := Check(outcome(map[string]string{"r000-b00": "c2.1"}, ops...)); len(rep.Findings) != 0 {
		t.Fatalf("an unacknowledged write in the database is legal: %v", rep.Findings)
	}
	ops = []Op{write(1, "c1.1", 1*s, 4*s, OK), write(2, "c2.1", 2*s, 3*s, OK)}
	if rep := Check(outcome(map[string]string{"r000-b00": "c1.1"}, ops...)); len(rep.Findings) != 0 {
		t.Fatalf("concurrent writes may land in either order: %v", rep.Findings)
	}
}

func TestCheck_PhantomValues(t *testing.T) {
	ops := []Op{write(1, "c1.1", 1*s, 2*s, OK), read(2, "c9.9", 3*s, 4*s), read(2, "c1.5", 25*s, 26*s)}
	rep := Check(outcome(map[string]string{"r000-b00": "c7.7"}, ops...))
	if got := findings(rep, CheckPhantom); got != 3 {
		t.Fatalf("two reads and the database hold values nobody wrote: %d phantoms, want 3: %v", got, rep.Findings)
	}
	// A read that completes before the write it returns was invoked.
	ops = []Op{read(2, "c1.1", 1*s, 2*s), write(1, "c1.1", 3*s, 4*s, OK)}
	if got := findings(Check(outcome(map[string]string{"r000-b00": "c1.1"}, ops...)), CheckPhantom); got != 1 {
		t.Fatalf("a read from the future: %d phantoms, want 1", got)
	}
}

func TestCheck_StaleReadsOutsideFaultsOnly(t *testing.T) {
	db := map[string]string{"r000-b00": "c1.2"}
	ops := []Op{
		write(1, "c1.1", 1*s, 2*s, OK),
		write(1, "c1.2", 3*s, 4*s, OK),
		read(2, "c1.1", 3500*time.Millisecond, 5*s), // concurrent with c1.2: legal
		read(2, "c1.1", 11*s, 12*s),                 // in the fault window: counted apart
		read(2, "c1.1", 25*s, 26*s),                 // after convergence: stale by 21 s
		read(2, "", 27*s, 28*s),                     // nothing, after acknowledged writes: stale
	}
	rep := Check(outcome(db, ops...))
	row := rep.Rows[0]
	if row.Stale != 2 || row.StaleFault != 1 {
		t.Fatalf("row = %+v, want 2 stale reads after convergence and 1 in the fault", row)
	}
	if row.MaxStale != 25*s {
		t.Fatalf("max staleness %s, want 25s (nothing read at 27s, superseded since c1.1's ack at 2s)", row.MaxStale)
	}
	for _, f := range rep.Findings {
		if f.Check == CheckStale && (f.Count != 2 || !strings.Contains(f.Example, "c1.2 was acknowledged at 4.00s")) {
			t.Fatalf("finding %v, want 2 stale reads naming c1.2", f)
		}
	}
	if findings(rep, CheckStale) != 2 || findings(rep, CheckLinearizable) != 1 {
		t.Fatalf("findings %v, want 2 stale reads, and the round's history not linearizable", rep.Findings)
	}
}

func TestCheck_Linearizability(t *testing.T) {
	db := map[string]string{"r000-b00": "c1.2"}
	legal := []Op{
		write(1, "c1.1", 1*s, 2*s, OK),
		write(2, "c2.1", 2500*time.Millisecond, 0, Unknown), // may land any time after 2.5 s
		read(3, "c1.1", 3*s, 4*s),
		read(3, "c2.1", 5*s, 6*s),
		write(1, "c1.2", 7*s, 8*s, OK),
		read(3, "c1.2", 9*s, 9*s),
	}
	if rep := Check(outcome(db, legal...)); rep.Rows[0].LinOK != 1 || len(rep.Findings) != 0 {
		t.Fatalf("legal history: row %+v, findings %v", rep.Rows[0], rep.Findings)
	}
	// c2.1 was read, then c1.1 again: no order of the writes explains it.
	// (The stale check misses this one: c2.1 was never acknowledged.)
	illegal := []Op{
		write(1, "c1.1", 1*s, 2*s, OK),
		write(2, "c2.1", 2500*time.Millisecond, 0, Unknown),
		read(3, "c2.1", 3*s, 4*s),
		read(3, "c1.1", 5*s, 6*s),
	}
	rep := Check(outcome(map[string]string{"r000-b00": "c2.1"}, illegal...))
	if rep.Rows[0].LinIllegal != 1 || findings(rep, CheckLinearizable) != 1 || findings(rep, CheckStale) != 0 {
		t.Fatalf("non-linearizable history: row %+v, findings %v", rep.Rows[0], rep.Findings)
	}
	// Under a partition the same history is reported, not a finding.
	o := outcome(map[string]string{"r000-b00": "c2.1"}, illegal...)
	o.Rounds[0].Nemesis = NemesisPartition
	if rep := Check(o); rep.Rows[0].LinIllegal != 1 || len(rep.Findings) != 0 {
		t.Fatalf("partition: row %+v, findings %v; want the verdict in the table only", rep.Rows[0], rep.Findings)
	}
}

func TestCheck_Timings(t *testing.T) {
	o := outcome(map[string]string{"r000-b00": "c1.1"},
		write(1, "c1.1", 1*s, 2*s, OK),
		write(1, "c1.2", 16*s, 17*s, Fail), // an error after the heal: recovery ends at 17 s
		read(2, "c1.1", 18*s, 18*s))
	o.Rounds = append(o.Rounds, Round{Index: 1, Nemesis: NemesisIsolateDB, Inject: 40 * s, Heal: 45 * s, Converged: 46 * s, End: 50 * s})
	o.Ops = append(o.Ops, Op{NS: NSWriteThrough, Key: "r001-b00", Kind: Write, Value: "c3.1", Invoke: 41 * s, Complete: 42 * s, Result: Unknown})
	rep := Check(o)
	kill, db := rep.Timings[0], rep.Timings[1]
	if kill.Detection[0] != 2*s || kill.Convergence[0] != 5*s || kill.Recover[0] != 2*s {
		t.Fatalf("kill timings %+v, want detection 2s, convergence 5s, recovery 2s", kill)
	}
	if db.Detection[0] != 2*s || db.Recover[0] != 0 {
		t.Fatalf("database timings %+v, want detection 2s (the first client error), recovery 0", db)
	}
	var out strings.Builder
	rep.WriteTable(&out)
	for _, want := range []string{"nemesis", "kill", "isolate-db", "acknowledged", "lost", "stale reads", "max staleness", "detection p50"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func FuzzParseValue(f *testing.F) {
	f.Add("c3.41")
	f.Add("c.1")
	f.Add("r001-b02")
	f.Fuzz(func(t *testing.T, v string) {
		c, seq, ok := parseValue(v)
		if ok {
			// Whatever parses, its canonical form parses back the same.
			if c2, s2, ok2 := parseValue(value(c, seq)); !ok2 || c2 != c || s2 != seq {
				t.Fatalf("parseValue(%q) = %d, %d; value(%d, %d) = %q parses to %d, %d, %v", v, c, seq, c, seq, value(c, seq), c2, s2, ok2)
			}
		}
		_ = roundOf(v) // must not panic
	})
}

func TestRoundOf(t *testing.T) {
	for key, want := range map[string]int{quietKey(7, 3): 7, busyKeys(12, 1)[0]: 12, "r-1-b00": -1, "x001-b00": -1, "r001": -1} {
		if got := roundOf(key); got != want {
			t.Errorf("roundOf(%q) = %d, want %d", key, got, want)
		}
	}
}
