package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The child process of TestJournal_SurvivesKill9 is this test binary,
// re-executed with these variables set.
const (
	envKillPath  = "JOURNAL_KILL9_PATH"
	envKillRound = "JOURNAL_KILL9_ROUND"
	killWriters  = 50
	killPerGo    = 400 // far more than the parent waits for before the kill
)

// killValue is the value of key at version: the parent recomputes it.
func killValue(key string, version uint64) []byte {
	return []byte(strings.Repeat(fmt.Sprintf("%s@%d;", key, version), 4))
}

// TestJournal_SurvivesKill9 is the proof of "durable before ack": a child
// process appends from 50 goroutines and prints each key as soon as Append
// returns; the parent kills it with SIGKILL mid-stream, reopens the journal
// and finds every acknowledged write pending with its value (or a newer one
// whose ack the kill cut off).
func TestJournal_SurvivesKill9(t *testing.T) {
	if path := os.Getenv(envKillPath); path != "" {
		killChild(t, path, os.Getenv(envKillRound))
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for round := range 3 {
		killAt := 300 + rng.IntN(2000)
		acked, lines := killRound(t, path, round, killAt)
		j, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		found := 0
		for key, v := range acked {
			r, ok, err := j.Pending("ns", key)
			switch {
			case err != nil || !ok:
				t.Errorf("round %d: acknowledged %s v%d is not pending (%v)", round, key, v, err)
			case r.Version < v || !bytes.Equal(r.Value, killValue(key, r.Version)):
				t.Errorf("round %d: %s: pending v%d %q; acknowledged v%d", round, key, r.Version, r.Value, v)
			default:
				found++
			}
		}
		if err := checkInvariants(j); err != nil {
			t.Errorf("round %d: invariants after kill -9: %v", round, err)
		}
		s, _ := j.Stats()
		t.Logf("round %d: killed after %d acks (target %d): %d acknowledged keys, %d found pending; journal holds %d",
			round, lines, killAt, len(acked), found, s.Pending)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// killRound runs one child, kills it after killAt acks and returns the
// highest acknowledged version of each key and the number of acks read.
func killRound(t *testing.T, path string, round, killAt int) (map[string]uint64, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournal_SurvivesKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillPath+"="+path, envKillRound+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]uint64{}
	lines := 0
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() { // after the kill, read what the child printed before it
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[f[1]] = max(acked[f[1]], v)
		lines++
		if lines == killAt && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !killed || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child was not killed mid-way (killed=%v, %v, %d acks)\n%s", round, killed, err, lines, stderr.String())
	}
	return acked, lines
}

// killChild appends from killWriters goroutines. Goroutine g writes each of
// its keys twice (versions 2i+1 and 2i+2), printing "ack key version" the
// moment Append returns nil.
func killChild(t *testing.T, path, round string) {
	j, err := Open(path, Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range killWriters {
		wg.Go(func() {
			for i := range killPerGo {
				key := fmt.Sprintf("r%s-g%d-%d", round, g, i/2)
				v := uint64(i + 1)
				err := j.Append(context.Background(), Record{Namespace: "ns", Key: key, Value: killValue(key, v), Version: v})
				if err != nil {
					t.Error(err)
					return
				}
				// One write per line: lines from goroutines never interleave.
				fmt.Fprintf(os.Stdout, "ack %s %d\n", key, v)
			}
		})
	}
	wg.Wait()
	t.Error("child finished before it was killed")
}
