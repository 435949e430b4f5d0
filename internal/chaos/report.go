package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/anishathalye/porcupine"
)

// Row is the table line of one nemesis and namespace, over all its rounds.
type Row struct {
	Nemesis, NS string
	Rounds      int
	Ops         int // operations on the rounds' keys, the final reads included
	Acked       int // acknowledged writes
	Lost        int // acknowledged writes not in the database (CheckLost)
	// Stale counts stale reads outside fault windows (CheckStale);
	// StaleFault those during a fault, which the cache allows.
	Stale, StaleFault       int
	MaxStale, MaxStaleFault time.Duration // how long the value read had been superseded
	Phantom                 int
	// Linearizable is porcupine's verdict on the write-through namespace:
	// rounds Ok / checked, and Illegal and Unknown counts.
	LinOK, LinIllegal, LinUnknown int
}

// Timing summarises one nemesis's rounds: detection (fault to the peers'
// rings without the victim; for the database, to the clients' first
// error), convergence (heal to every ring agreeing), recovery (heal to the
// last client error of the round).
type Timing struct {
	Nemesis                         string
	Detection, Convergence, Recover []time.Duration
}

// Report is what Check found.
type Report struct {
	Seed        uint64
	Nodes       int
	Took        time.Duration
	Rounds      int
	Rows        []Row
	Timings     []Timing
	Findings    []Finding
	DeadLetters uint64
}

// Check runs every check on o.
func Check(o *Outcome) *Report {
	rep := &Report{Seed: o.Seed, Nodes: o.Nodes, Took: o.Took, Rounds: len(o.Rounds), DeadLetters: o.DeadLetters}
	var names []string
	roundsOf := map[string]int{}
	for _, r := range o.Rounds {
		if roundsOf[r.Nemesis] == 0 {
			names = append(names, r.Nemesis)
		}
		roundsOf[r.Nemesis]++
	}
	rows := map[[2]string]*Row{}
	for _, nm := range names {
		for _, ns := range Namespaces {
			rows[[2]string{nm, ns}] = &Row{Nemesis: nm, NS: ns, Rounds: roundsOf[nm]}
		}
	}
	found := map[[3]string]*Finding{}
	find := func(nm, ns, check, example string) {
		id := [3]string{nm, ns, check}
		if f := found[id]; f != nil {
			f.Count++
			return
		}
		found[id] = &Finding{Nemesis: nm, NS: ns, Check: check, Count: 1, Example: example}
	}

	linOps := map[int][]Op{} // round → write-through ops
	for _, kh := range groupByKey(o.Ops) {
		if kh.round < 0 || kh.round >= len(o.Rounds) {
			continue
		}
		rd := o.Rounds[kh.round]
		row := rows[[2]string{rd.Nemesis, kh.ns}]
		if row == nil {
			continue
		}
		row.Ops += len(kh.all)
		row.Acked += len(kh.acked)
		stale, phantom := kh.checkReads()
		for _, s := range stale {
			if inFault(rd, s.read.Invoke) {
				row.StaleFault++
				row.MaxStaleFault = max(row.MaxStaleFault, s.by)
				continue
			}
			row.Stale++
			row.MaxStale = max(row.MaxStale, s.by)
			find(rd.Nemesis, kh.ns, CheckStale, describeStale(kh, s))
		}
		for _, p := range phantom {
			row.Phantom++
			find(rd.Nemesis, kh.ns, CheckPhantom, fmt.Sprintf("%s/%s read %q via %q at %s", kh.ns, kh.key, p.Value, p.Via, secs(p.Invoke)))
		}
		if kh.ns != NSReadThrough && o.DB != nil {
			stored, present := o.DB[kh.ns][kh.key]
			lost, bad := kh.lostWrites(stored, present)
			if bad {
				find(rd.Nemesis, kh.ns, CheckPhantom, fmt.Sprintf("the database holds %s/%s = %q, which no client wrote", kh.ns, kh.key, stored))
			}
			row.Lost += len(lost)
			for _, l := range lost {
				find(rd.Nemesis, kh.ns, CheckLost, fmt.Sprintf("%s/%s = %s acknowledged at %s; the database holds %q",
					kh.ns, kh.key, l.Value, secs(l.Complete), stored))
			}
		}
		if kh.ns == NSWriteThrough {
			linOps[kh.round] = append(linOps[kh.round], kh.all...)
		}
	}
	for i, rd := range o.Rounds {
		row := rows[[2]string{rd.Nemesis, NSWriteThrough}]
		switch checkLinearizable(linOps[i]) {
		case porcupine.Ok:
			row.LinOK++
		case porcupine.Illegal:
			row.LinIllegal++
			if Linearizable[rd.Nemesis] {
				find(rd.Nemesis, NSWriteThrough, CheckLinearizable, fmt.Sprintf("round %d (victim %s)", rd.Index, rd.Victim))
			}
		default:
			row.LinUnknown++
		}
		if rd.Err != "" {
			find(rd.Nemesis, "", CheckRound, fmt.Sprintf("round %d: %s", rd.Index, rd.Err))
		}
	}
	if o.DeadLetters > 0 {
		find("end", "", CheckDeadLetters, fmt.Sprintf("%d dead letters after the drain", o.DeadLetters))
	}
	for _, nm := range names {
		for _, ns := range Namespaces {
			rep.Rows = append(rep.Rows, *rows[[2]string{nm, ns}])
		}
	}
	rep.Timings = timings(o, names)
	for _, f := range found {
		rep.Findings = append(rep.Findings, *f)
	}
	slices.SortFunc(rep.Findings, func(a, b Finding) int {
		return strings.Compare(a.Nemesis+a.NS+a.Check, b.Nemesis+b.NS+b.Check)
	})
	return rep
}

// inFault reports whether t falls between the round's fault and the
// cluster's convergence after the heal (or the round's end without one).
func inFault(rd Round, t time.Duration) bool {
	end := rd.Converged
	if end == 0 {
		end = never
	}
	return t >= rd.Inject && t < end
}

func timings(o *Outcome, names []string) []Timing {
	byName := map[string]*Timing{}
	for _, nm := range names {
		byName[nm] = &Timing{Nemesis: nm}
	}
	firstErr := make([]time.Duration, len(o.Rounds)) // database detection
	lastErr := make([]time.Duration, len(o.Rounds))  // recovery
	for _, op := range o.Ops {
		i := roundOf(op.Key)
		if i < 0 || i >= len(o.Rounds) || op.Result == OK {
			continue
		}
		rd := o.Rounds[i]
		if op.Invoke >= rd.Inject && (firstErr[i] == 0 || op.Complete < firstErr[i]) {
			firstErr[i] = op.Complete
		}
		if op.Invoke >= rd.Heal && op.Invoke < rd.End && op.Complete > lastErr[i] {
			lastErr[i] = op.Complete
		}
	}
	for i, rd := range o.Rounds {
		t := byName[rd.Nemesis]
		switch {
		case rd.Detected > 0:
			t.Detection = append(t.Detection, rd.Detected-rd.Inject)
		case rd.Victim == "" && firstErr[i] > 0:
			t.Detection = append(t.Detection, firstErr[i]-rd.Inject)
		}
		if rd.Converged > 0 {
			t.Convergence = append(t.Convergence, rd.Converged-rd.Heal)
		}
		if rd.End > 0 {
			rec := time.Duration(0)
			if lastErr[i] > 0 {
				rec = lastErr[i] - rd.Heal
			}
			t.Recover = append(t.Recover, rec)
		}
	}
	out := make([]Timing, 0, len(names))
	for _, nm := range names {
		out = append(out, *byName[nm])
	}
	return out
}

// WriteTable prints the report: the table per nemesis and namespace, the
// timings, and the findings.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "chaos run: %d nodes, %d rounds in %s, seed %d\n\n", r.Nodes, r.Rounds, r.Took.Round(time.Second), r.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nemesis\tns\trounds\toperations\tacknowledged\tlost\tstale reads\tmax staleness\tstale in fault\tmax in fault\tlinearizable\t")
	for _, x := range r.Rows {
		lin := "-"
		if x.NS == NSWriteThrough {
			lin = fmt.Sprintf("%d/%d", x.LinOK, x.LinOK+x.LinIllegal+x.LinUnknown)
			if x.LinUnknown > 0 {
				lin += fmt.Sprintf(" (%d unknown)", x.LinUnknown)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t\n", x.Nemesis, x.NS, x.Rounds, x.Ops, x.Acked,
			x.Lost, x.Stale, durOrDash(x.MaxStale), x.StaleFault, durOrDash(x.MaxStaleFault), lin)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nemesis\tdetection p50\tmax\tconvergence p50\tmax\trecovery p50\tmax\t")
	for _, t := range r.Timings {
		d50, dmax := summary(t.Detection)
		c50, cmax := summary(t.Convergence)
		r50, rmax := summary(t.Recover)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Nemesis, d50, dmax, c50, cmax, r50, rmax)
	}
	tw.Flush()
	if r.DeadLetters > 0 {
		fmt.Fprintf(w, "\ndead letters after the drain: %d\n", r.DeadLetters)
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(w, "\nfindings:")
		for _, f := range r.Findings {
			fmt.Fprintln(w, "  "+f.String())
		}
	}
}

func durOrDash(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return secs(d)
}

// summary returns the median and the maximum, or dashes for none.
func summary(ds []time.Duration) (p50, maxOf string) {
	if len(ds) == 0 {
		return "-", "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return secs(s[len(s)/2]), secs(s[len(s)-1])
}
