package chaos

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Nemesis names.
const (
	// NemesisKill: kill -9 a node; heal: start it again on its data
	// directory (its write-behind journal replays).
	NemesisKill = "kill"
	// NemesisPause: SIGSTOP a node until its peers have declared it dead;
	// heal: SIGCONT. A pause is a partition in time: the node wakes up
	// believing it still owns its keys.
	NemesisPause = "pause"
	// NemesisPartition: cut a node's peer link, so it and the clients next
	// to it are cut off from the other nodes (not from the database);
	// heal: attach the link again.
	NemesisPartition = "partition"
	// NemesisIsolateDB: cut PostgreSQL's link; heal: attach it again.
	NemesisIsolateDB = "isolate-db"
	// NemesisRestart: SIGTERM a node (a graceful leave that flushes its
	// journal); heal: start it again.
	NemesisRestart = "restart"
)

// AllNemeses lists every nemesis in the order a run cycles through them.
var AllNemeses = []string{NemesisKill, NemesisPause, NemesisPartition, NemesisIsolateDB, NemesisRestart}

// nemesis is a fault and its repair. A fault on a node (victim non-nil)
// is detected when the observers' rings no longer hold the victim (for a
// partition, also when the victim's ring holds only itself); a database
// fault is detected by the clients' first error (see Check).
type nemesis struct {
	name         string
	onNode       bool
	selfObserves bool
	inject       func(c *Cluster, victim *Node) error
	heal         func(c *Cluster, victim *Node) error
}

// terminateTimeout bounds a graceful stop (the node's own bound is 20 s).
const terminateTimeout = 30 * time.Second

var nemeses = map[string]nemesis{
	NemesisKill: {name: NemesisKill, onNode: true,
		inject: func(_ *Cluster, v *Node) error { return v.Kill() },
		heal:   func(_ *Cluster, v *Node) error { return v.Start() },
	},
	NemesisPause: {name: NemesisPause, onNode: true,
		inject: func(_ *Cluster, v *Node) error { return v.Pause() },
		heal:   func(_ *Cluster, v *Node) error { return v.Resume() },
	},
	NemesisPartition: {name: NemesisPartition, onNode: true, selfObserves: true,
		inject: func(c *Cluster, v *Node) error { return c.Net.Cut(v.Host, PeerLink) },
		heal:   func(c *Cluster, v *Node) error { return c.Net.Heal(v.Host, PeerLink) },
	},
	NemesisIsolateDB: {name: NemesisIsolateDB,
		inject: func(c *Cluster, _ *Node) error { return c.Net.Cut(c.PG.host, DBLink) },
		heal:   func(c *Cluster, _ *Node) error { return c.Net.Heal(c.PG.host, DBLink) },
	},
	NemesisRestart: {name: NemesisRestart, onNode: true,
		inject: func(_ *Cluster, v *Node) error { return v.Terminate(terminateTimeout) },
		heal:   func(_ *Cluster, v *Node) error { return v.Start() },
	},
}

func lookupNemesis(name string) (nemesis, error) {
	n, ok := nemeses[name]
	if !ok {
		return n, fmt.Errorf("chaos: unknown nemesis %q (known: %v)", name, AllNemeses)
	}
	return n, nil
}

// observers are the nodes whose rings tell that victim's fault is detected.
func (nm nemesis) observers(c *Cluster, victim *Node) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n != victim || nm.selfObserves {
			out = append(out, n)
		}
	}
	return out
}

// Round is one nemesis round. Times are since the run began; Detected and
// Converged are zero when they did not happen.
type Round struct {
	Index     int
	Nemesis   string
	Victim    string // "" for the database
	Start     time.Duration
	Inject    time.Duration
	Detected  time.Duration
	Heal      time.Duration
	Converged time.Duration
	End       time.Duration
	Err       string // what went wrong with the round itself
}

// busyKeys are the keys of round i that every client reads and writes,
// the same names in every namespace.
func busyKeys(i, n int) []string {
	keys := make([]string, n)
	for k := range keys {
		keys[k] = fmt.Sprintf("r%03d-b%02d", i, k)
	}
	return keys
}

// quietKey is candidate k of round i for a quiet key: one that clients
// only read, written once before the fault and then only by the round's
// script during the fault, so that a stale entry left by the fault stays
// visible until the end.
func quietKey(i, k int) string { return fmt.Sprintf("r%03d-q%02d", i, k) }

// roundOf returns the round index a key belongs to, or -1.
func roundOf(key string) int {
	digits, ok := strings.CutPrefix(key, "r")
	if !ok {
		return -1
	}
	digits, _, ok = strings.Cut(digits, "-")
	if !ok {
		return -1
	}
	r, err := strconv.Atoi(digits)
	if err != nil || r < 0 {
		return -1
	}
	return r
}
