package journal

import (
	"errors"
	"strings"
	"testing"
)

func TestJournal_BuryMovesToDeadLetters(t *testing.T) {
	j := openTest(t, Options{})
	mustAppend(t, j, set("ns", "poison", "bad", 3))
	mustAppend(t, j, set("ns", "ok", "good", 1))
	r := mustPending(t, j, "ns", "poison")
	if err := j.Retry(r, errors.New("first")); err != nil {
		t.Fatal(err)
	}
	if err := j.Bury(r, errors.New(`pq: invalid input syntax for type json`)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.Pending("ns", "poison"); ok {
		t.Fatal("buried record still pending")
	}
	dl, err := j.DeadLetters(10)
	if err != nil || len(dl) != 1 {
		t.Fatalf("DeadLetters = %v, %v", dl, err)
	}
	if d := dl[0]; d.Key != "poison" || string(d.Value) != "bad" || d.Version != 3 || d.Attempts != 2 ||
		!strings.Contains(d.LastError, "invalid input syntax") {
		t.Errorf("dead letter = %+v", d)
	}
	if s := mustStats(t, j); s.Pending != 1 || s.DeadLetters != 1 || s.PendingBytes != int64(len("nsokgood")) {
		t.Errorf("Stats = %+v", s)
	}
	if keys := oldestKeys(t, j); keys != "ok" {
		t.Errorf("Oldest = %s", keys)
	}
}

func TestJournal_BuryIgnoresStaleVersion(t *testing.T) {
	j := openTest(t, Options{})
	mustAppend(t, j, set("ns", "k", "v1", 1))
	old := mustPending(t, j, "ns", "k")
	mustAppend(t, j, set("ns", "k", "v2", 2))
	if err := j.Bury(old, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	if r := mustPending(t, j, "ns", "k"); string(r.Value) != "v2" {
		t.Errorf("pending = %q; want v2", r.Value)
	}
	if s := mustStats(t, j); s.DeadLetters != 0 {
		t.Errorf("a stale Bury recorded a dead letter: %+v", s)
	}
}

func TestJournal_ReviveReturnsDeadLetterToPending(t *testing.T) {
	j := openTest(t, Options{})
	mustAppend(t, j, set("ns", "a", "x", 1))
	mustAppend(t, j, set("ns", "b", "y", 1))
	a := mustPending(t, j, "ns", "a")
	if err := j.Bury(a, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	if err := j.Revive("ns", "a"); err != nil {
		t.Fatal(err)
	}
	r := mustPending(t, j, "ns", "a")
	if string(r.Value) != "x" || r.Attempts != 0 || r.LastError != "" {
		t.Errorf("revived = %+v; want value x, attempts reset", r)
	}
	if keys := oldestKeys(t, j); keys != "b a" {
		t.Errorf("Oldest = %s; a revived record goes to the tail", keys)
	}
	if s := mustStats(t, j); s.DeadLetters != 0 || s.Pending != 2 {
		t.Errorf("Stats = %+v", s)
	}
	if err := j.Revive("ns", "a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Revive = %v; want ErrNotFound", err)
	}
}

func TestJournal_ReviveDropsDeadLetterWhenNewerPending(t *testing.T) {
	j := openTest(t, Options{})
	mustAppend(t, j, set("ns", "k", "old", 1))
	if err := j.Bury(mustPending(t, j, "ns", "k"), errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, set("ns", "k", "new", 2))
	if err := j.Revive("ns", "k"); err != nil {
		t.Fatal(err)
	}
	if r := mustPending(t, j, "ns", "k"); string(r.Value) != "new" {
		t.Errorf("pending = %q; the newer write must win", r.Value)
	}
	if s := mustStats(t, j); s.DeadLetters != 0 || s.Pending != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestJournal_ReviveIsBounded(t *testing.T) {
	j := openTest(t, Options{MaxPending: 1})
	mustAppend(t, j, set("ns", "a", "x", 1))
	if err := j.Bury(mustPending(t, j, "ns", "a"), errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, set("ns", "b", "y", 1))
	if err := j.Revive("ns", "a"); !errors.Is(err, ErrFull) {
		t.Fatalf("Revive past MaxPending = %v; want ErrFull", err)
	}
	if s := mustStats(t, j); s.DeadLetters != 1 || s.Pending != 1 {
		t.Errorf("a refused Revive changed the journal: %+v", s)
	}
}

func TestJournal_DropDeletesDeadLetter(t *testing.T) {
	j := openTest(t, Options{})
	for _, k := range []string{"b", "a", "c"} {
		mustAppend(t, j, set("ns", k, k, 1))
		if err := j.Bury(mustPending(t, j, "ns", k), errors.New("boom")); err != nil {
			t.Fatal(err)
		}
	}
	if dl, _ := j.DeadLetters(2); len(dl) != 2 || dl[0].Key != "a" || dl[1].Key != "b" {
		t.Errorf("DeadLetters(2) = %+v; want a, b", dl)
	}
	if err := j.Drop("ns", "b"); err != nil {
		t.Fatal(err)
	}
	if err := j.Drop("ns", "b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Drop = %v; want ErrNotFound", err)
	}
	if s := mustStats(t, j); s.DeadLetters != 2 || s.Pending != 0 {
		t.Errorf("Stats = %+v", s)
	}
	if dl, _ := j.DeadLetters(0); len(dl) != 0 {
		t.Errorf("DeadLetters(0) = %v", dl)
	}
}
