package chaos

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Checks a Report's findings are named by.
const (
	// CheckLost: an acknowledged write of a write-through or write-behind
	// namespace is not in the database at the end (the database holds a
	// value definitely older, or none).
	CheckLost = "lost"
	// CheckStale: a read outside a fault window (before the fault, or
	// after the cluster converged again) returned a value older than a
	// write acknowledged before the read began.
	CheckStale = "stale"
	// CheckLinearizable: the write-through namespace's history of a round
	// is not linearizable (porcupine), under a nemesis in Linearizable.
	CheckLinearizable = "linearizable"
	// CheckPhantom: a read, or the database, holds a value no client wrote
	// (or a read saw a write before it was made).
	CheckPhantom = "phantom"
	// CheckRound: a node fault was not detected, or the cluster did not
	// converge after a heal.
	CheckRound = "round"
	// CheckDeadLetters: the write-behind journals ended with dead letters.
	CheckDeadLetters = "dead-letters"
)

// Linearizable lists the nemeses under which the write-through namespace
// is a linearizable register, so porcupine's verdict on it is a check.
// Under a partition the cache is deliberately available on both sides
// (two owners of a key may accept writes at once), and a paused node wakes
// up serving what it cached until gossip tells it otherwise: neither is
// linearizable, and only CheckStale (after convergence) holds for them.
var Linearizable = map[string]bool{NemesisKill: true, NemesisIsolateDB: true, NemesisRestart: true}

// never is the completion time of a write that was not acknowledged: it
// may take effect at any time after it was invoked.
const never = time.Duration(math.MaxInt64)

// initial stands for "no value yet" (a read that found nothing, or no row):
// older than every write.
const initial = time.Duration(-1)

// Finding is a failed check of one nemesis (and namespace).
type Finding struct {
	Nemesis string
	NS      string // "" for checks of a whole round
	Check   string
	Count   int
	Example string
}

func (f Finding) String() string {
	ns := f.NS
	if ns == "" {
		ns = "-"
	}
	return fmt.Sprintf("%s/%s %s: %d (e.g. %s)", f.Nemesis, ns, f.Check, f.Count, f.Example)
}

// keyHistory is one key's operations and its acknowledged writes by
// completion time.
type keyHistory struct {
	ns, key string
	round   int
	writes  map[string]Op // by value
	acked   []Op          // ok writes, by Complete
	reads   []Op          // ok reads
	all     []Op
}

func groupByKey(ops []Op) map[[2]string]*keyHistory {
	out := map[[2]string]*keyHistory{}
	for _, op := range ops {
		id := [2]string{op.NS, op.Key}
		kh := out[id]
		if kh == nil {
			kh = &keyHistory{ns: op.NS, key: op.Key, round: roundOf(op.Key), writes: map[string]Op{}}
			out[id] = kh
		}
		kh.all = append(kh.all, op)
		switch {
		case op.Kind == Write:
			kh.writes[op.Value] = op
			if op.Result == OK {
				kh.acked = append(kh.acked, op)
			}
		case op.Result == OK:
			kh.reads = append(kh.reads, op)
		}
	}
	for _, kh := range out {
		slices.SortFunc(kh.acked, func(a, b Op) int { return cmpDur(a.Complete, b.Complete) })
	}
	return out
}

// completion is when the write of v became definitely visible: its ack,
// never for a write not acknowledged, initial for no value.
func (kh *keyHistory) completion(v string, found bool) (time.Duration, bool) {
	if !found {
		return initial, true
	}
	w, ok := kh.writes[v]
	if !ok {
		return 0, false
	}
	if w.Result != OK {
		return never, true
	}
	return w.Complete, true
}

// superseded returns the earliest acknowledgement of a write definitely
// newer than a value acknowledged at vc (invoked after vc) and acknowledged
// before t, if there is one.
func (kh *keyHistory) superseded(vc, t time.Duration) (Op, bool) {
	if vc == never {
		return Op{}, false
	}
	for _, a := range kh.acked {
		if a.Complete >= t {
			break
		}
		if a.Invoke > vc {
			return a, true
		}
	}
	return Op{}, false
}

// staleRead is a read that returned a superseded value.
type staleRead struct {
	read, newer Op
	by          time.Duration // how long the value had been superseded
}

// checkReads classifies kh's reads: stale, and phantom (a value never
// written, or read before its write began).
func (kh *keyHistory) checkReads() (stale []staleRead, phantom []Op) {
	for _, r := range kh.reads {
		vc, ok := kh.completion(r.Value, r.Found)
		if !ok || (r.Found && kh.writes[r.Value].Invoke > r.Complete) {
			phantom = append(phantom, r)
			continue
		}
		if w, ok := kh.superseded(vc, r.Invoke); ok {
			stale = append(stale, staleRead{read: r, newer: w, by: r.Invoke - w.Complete})
		}
	}
	return stale, phantom
}

// lostWrites returns the acknowledged writes definitely newer than what
// the database holds (stored, present).
func (kh *keyHistory) lostWrites(stored string, present bool) (lost []Op, phantom bool) {
	dc, ok := kh.completion(stored, present)
	if !ok {
		return nil, true
	}
	if dc == never {
		return nil, false
	}
	for _, a := range kh.acked {
		if a.Invoke > dc {
			lost = append(lost, a)
		}
	}
	return lost, false
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func secs(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func describeStale(kh *keyHistory, s staleRead) string {
	via := s.read.Via
	if via == "" {
		via = "the Go client"
	}
	got := "nothing"
	if s.read.Found {
		got = s.read.Value
	}
	return fmt.Sprintf("%s/%s read %s via %s at %s; %s was acknowledged at %s",
		kh.ns, kh.key, got, via, secs(s.read.Invoke), s.newer.Value, secs(s.newer.Complete))
}
