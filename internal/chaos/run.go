package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures Run. Zero fields take the defaults given.
type Config struct {
	Cluster ClusterConfig
	// Duration: rounds start until this much time has passed since the
	// first, and every nemesis runs at least once. 0: one round each.
	Duration time.Duration
	// Nemeses are cycled in order; default AllNemeses.
	Nemeses []string
	// Seed drives victims, keys and the operation mix; 0 takes the clock.
	Seed uint64
	// RoutedClients use pkg/client from the root namespace (default 2);
	// every node also has one client in its own namespace that calls it
	// directly.
	RoutedClients int
	// Rate is the operations per second of each client (default 25);
	// Writes the fraction that write (default 0.4).
	Rate   float64
	Writes float64
	// Keys is the number of busy keys per round (default 6), read and
	// written by every client; QuietPerNode the number of quiet keys each
	// node owns per namespace and round (default 2), only read by the
	// clients and written by the round's script during the fault.
	Keys, QuietPerNode int
	// WarmUp is the traffic before the fault (default 1 s); Hold how long
	// the fault stays after it was detected (default 2 s); Settle the
	// traffic after the cluster converged (default 2 s).
	WarmUp, Hold, Settle time.Duration
	// OpTimeout bounds one operation (default 1 s): a call that takes
	// longer is Unknown.
	OpTimeout time.Duration
	// DetectTimeout bounds the wait for the peers to notice a node fault
	// (default 45 s: a partition's victim, whose own probes all fail,
	// slows its failure detector down as memberlist's Lifeguard does, and
	// in back-to-back partition rounds took 30 s and more to drop the
	// others); ConvergeTimeout the wait for convergence after a
	// heal (default 60 s).
	DetectTimeout, ConvergeTimeout time.Duration
	Logger                         *slog.Logger
}

func (c *Config) defaults() {
	if len(c.Nemeses) == 0 {
		c.Nemeses = AllNemeses
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.WarmUp, time.Second)
	def(&c.Hold, 2*time.Second)
	def(&c.Settle, 2*time.Second)
	def(&c.OpTimeout, time.Second)
	def(&c.DetectTimeout, 45*time.Second)
	def(&c.ConvergeTimeout, 60*time.Second)
	if c.RoutedClients <= 0 {
		c.RoutedClients = 2
	}
	if c.Rate <= 0 {
		c.Rate = 25
	}
	if c.Writes <= 0 {
		c.Writes = 0.4
	}
	if c.Keys <= 0 {
		c.Keys = 6
	}
	if c.QuietPerNode <= 0 {
		c.QuietPerNode = 2
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Outcome is everything a run recorded, for Check.
type Outcome struct {
	Seed        uint64
	Nodes       int
	Rounds      []Round
	Ops         []Op
	DB          map[string]map[string]string // namespace → key → value stored at the end
	DeadLetters uint64
	Took        time.Duration
}

// Run starts a cluster, runs nemesis rounds under client load, heals,
// drains the write-behind journals, reads every key through every node and
// the database, and tears everything down. An error means the run itself
// went wrong (the cluster could not start, or never converged after a
// heal); what the cache did wrong is for Check to find in the Outcome,
// which is returned whenever there is one.
func Run(ctx context.Context, cfg Config) (*Outcome, error) {
	cfg.defaults()
	for _, name := range cfg.Nemeses {
		if _, err := lookupNemesis(name); err != nil {
			return nil, err
		}
	}
	log := cfg.Logger
	cfg.Cluster.Logger = log
	begin := time.Now()
	c, err := StartCluster(ctx, cfg.Cluster)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	pool, err := pgxpool.New(ctx, c.PG.DSN())
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	w, sc, err := newWorkload(c, pool, cfg)
	if err != nil {
		return nil, err
	}
	defer w.closeWorkers()
	defer w.stop()

	out := &Outcome{Seed: cfg.Seed, Nodes: len(c.Nodes)}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0))
	w.start()
	first := w.hist.Now()
	var runErr error
	for i := 0; runErr == nil && ctx.Err() == nil; i++ {
		if i >= len(cfg.Nemeses) && w.hist.Now()-first >= cfg.Duration {
			break
		}
		nm, _ := lookupNemesis(cfg.Nemeses[i%len(cfg.Nemeses)])
		var victim *Node
		if nm.onNode {
			victim = c.Nodes[rng.IntN(len(c.Nodes))]
		}
		r, err := runRound(ctx, c, w, sc, cfg, i, nm, victim)
		out.Rounds = append(out.Rounds, r)
		log.Info("chaos round", "round", i, "nemesis", nm.name, "victim", r.Victim,
			"detected", since(r.Detected, r.Inject), "converged", since(r.Converged, r.Heal), "err", r.Err)
		runErr = err
	}
	w.stop()

	// The end: everything healed and converged, journals drained, every
	// key read through every node, the database read directly.
	if runErr == nil {
		if _, err := c.WaitConverged(ctx, cfg.ConvergeTimeout); err != nil {
			runErr = err
		}
	}
	if runErr == nil {
		out.DeadLetters, runErr = c.DrainJournals(ctx, 2*time.Minute)
	}
	if runErr == nil {
		finalReads(w, w.allKeys)
		out.DB, runErr = readDB(ctx, c.PG.DSN())
	}
	out.Ops = w.hist.Ops()
	out.Took = time.Since(begin)
	if runErr != nil {
		for _, n := range c.Nodes {
			log.Warn("node log tail", "node", n.Name, "log", n.LogTail(3000))
		}
	}
	return out, runErr
}

// runRound runs one round: choose and prime its keys, warm up, inject the
// fault, wait for its detection, run the script, hold, heal, wait for
// convergence, settle. It returns an error only when the round could not
// be carried out (the cluster did not converge after the heal).
func runRound(ctx context.Context, c *Cluster, w *workload, sc *script, cfg Config, i int, nm nemesis, victim *Node) (Round, error) {
	r := Round{Index: i, Nemesis: nm.name, Start: w.hist.Now()}
	if victim != nil {
		r.Victim = victim.Name
	}
	ks, err := chooseKeys(ctx, c, i, cfg)
	if err != nil {
		r.Err = err.Error()
		return r, fmt.Errorf("round %d (%s): %w", i, nm.name, err)
	}
	w.keys.Store(ks)
	for _, ns := range Namespaces {
		for _, k := range append(slices.Clone(ks.busy), ks.quiet[ns]...) {
			w.allKeys = append(w.allKeys, [2]string{ns, k})
			w.hist.Add(w.do(sc.primer, ns, k, Write))
			w.hist.Add(w.do(sc.primer, ns, k, Read))
		}
	}
	pause(ctx, cfg.WarmUp)

	r.Inject = w.hist.Now()
	if err := nm.inject(c, victim); err != nil {
		r.Err = "inject: " + err.Error()
		return r, fmt.Errorf("round %d (%s): %w", i, nm.name, err)
	}
	if nm.onNode {
		_, err := poll(ctx, cfg.DetectTimeout, "the fault was not detected", func() error {
			return c.excluded(ctx, victim, nm.observers(c, victim))
		})
		if err == nil {
			r.Detected = w.hist.Now()
		} else {
			r.Err = err.Error()
		}
	}
	runScript(w, sc, c, ks, nm, victim)
	pause(ctx, cfg.Hold)

	r.Heal = w.hist.Now()
	if err := nm.heal(c, victim); err != nil {
		r.Err = "heal: " + err.Error()
		return r, fmt.Errorf("round %d (%s): %w", i, nm.name, err)
	}
	healed := w.hist.Now()
	took, err := c.WaitConverged(ctx, cfg.ConvergeTimeout)
	if err != nil {
		r.Err = err.Error()
		r.End = w.hist.Now()
		return r, fmt.Errorf("round %d (%s): %w", i, nm.name, err)
	}
	r.Converged = healed + took
	pause(ctx, cfg.Settle)
	r.End = w.hist.Now()
	return r, nil
}

// readDB returns every row of the generic table.
func readDB(ctx context.Context, dsn string) (map[string]map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT namespace, key, value FROM ringcache_kv WHERE value IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for rows.Next() {
		var ns, key string
		var v []byte
		if err := rows.Scan(&ns, &key, &v); err != nil {
			return nil, err
		}
		if out[ns] == nil {
			out[ns] = map[string]string{}
		}
		out[ns][key] = string(v)
	}
	return out, rows.Err()
}

// pause lets d of traffic pass (a fixed phase of the schedule, not a wait
// for a condition).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func since(t, from time.Duration) string {
	if t == 0 {
		return "-"
	}
	return (t - from).Round(time.Millisecond).String()
}
