package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringcache/ringcache/pkg/client"
)

// script holds the clients that are not part of the random load: the
// primer (ring-aware) that writes and reads every key once at the start of
// a round, and per node and namespace a client inside the node's namespace
// for the round's scripted writes during the fault.
type script struct {
	primer *worker
	local  map[string]map[string]*worker // node → namespace → client
}

// newWorkload connects the clients: one per node inside its namespace,
// cfg.RoutedClients ring-aware ones from the root namespace, and the
// script's.
func newWorkload(c *Cluster, pool *pgxpool.Pool, cfg Config) (*workload, *script, error) {
	w := &workload{hist: NewHistory(), db: pool, interval: time.Duration(float64(time.Second) / cfg.Rate),
		timeout: cfg.OpTimeout, writes: cfg.Writes}
	var seeds []string
	for _, n := range c.Nodes {
		seeds = append(seeds, n.GRPCAddr())
	}
	id := 0
	next := func(via string, api cacheAPI) *worker {
		wk := &worker{id: id, via: via, api: api, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(id)))}
		id++
		return wk
	}
	var apis []cacheAPI // every connection, closed by closeWorkers
	routed := func() (*worker, error) {
		cl, err := client.New(client.Options{Seeds: seeds, CallTimeout: cfg.OpTimeout})
		if err != nil {
			return nil, err
		}
		apis = append(apis, ringCache{cl})
		return next("", ringCache{cl}), nil
	}
	local := func(n *Node) (cacheAPI, error) {
		api, err := dialNode(n)
		if err != nil {
			return nil, err
		}
		apis = append(apis, api)
		return api, nil
	}
	fail := func(err error) (*workload, *script, error) {
		for _, a := range apis {
			a.Close()
		}
		return nil, nil, err
	}
	sc := &script{local: map[string]map[string]*worker{}}
	var err error
	if sc.primer, err = routed(); err != nil {
		return fail(err)
	}
	for _, n := range c.Nodes {
		api, err := local(n)
		if err != nil {
			return fail(err)
		}
		sc.local[n.Name] = map[string]*worker{}
		for _, ns := range Namespaces {
			sc.local[n.Name][ns] = next(n.Name, api)
		}
	}
	for _, n := range c.Nodes {
		api, err := local(n)
		if err != nil {
			return fail(err)
		}
		w.workers = append(w.workers, next(n.Name, api))
	}
	for range cfg.RoutedClients {
		wk, err := routed()
		if err != nil {
			return fail(err)
		}
		w.workers = append(w.workers, wk)
	}
	w.apis = apis
	w.keys.Store(&keySet{busy: busyKeys(-1, 1)}) // until the first round sets its own
	return w, sc, nil
}

// chooseKeys picks round i's busy keys and, per namespace, quiet keys so
// that every node owns cfg.QuietPerNode of them: whichever node the fault
// hits, some quiet keys are its and some are the others'.
func chooseKeys(ctx context.Context, c *Cluster, i int, cfg Config) (*keySet, error) {
	ks := &keySet{busy: busyKeys(i, cfg.Keys), quiet: map[string][]string{}}
	for _, ns := range Namespaces {
		owned := map[string]int{}
		for k := 0; len(ks.quiet[ns]) < cfg.QuietPerNode*len(c.Nodes); k++ {
			if k > 100*cfg.QuietPerNode*len(c.Nodes) {
				return nil, fmt.Errorf("no quiet keys owned by every node in namespace %s: owners %v", ns, owned)
			}
			key := quietKey(i, k)
			var owner string
			if _, err := poll(ctx, 10*time.Second, "no node said who owns "+key, func() (err error) {
				owner, err = c.owner(ctx, c.Nodes[k%len(c.Nodes)], ns, key)
				return err
			}); err != nil {
				return nil, err
			}
			if owned[owner] < cfg.QuietPerNode {
				owned[owner]++
				ks.quiet[ns] = append(ks.quiet[ns], key)
			}
		}
	}
	return ks, nil
}

// runScript writes, then reads, every quiet key during the fault: first
// through a node the fault spares, then, for a partition, through the
// victim, on its side of the cut (issue 13's break 1, one key at a time).
// Namespaces run in parallel, each through clients of its own.
func runScript(w *workload, sc *script, c *Cluster, ks *keySet, nm nemesis, victim *Node) {
	var sides []string
	for _, n := range c.Nodes {
		if n != victim {
			sides = append(sides, n.Name)
			break
		}
	}
	if nm.name == NemesisPartition {
		sides = append(sides, victim.Name)
	}
	var wg sync.WaitGroup
	for _, ns := range Namespaces {
		wg.Go(func() {
			for _, side := range sides {
				wk := sc.local[side][ns]
				for _, k := range ks.quiet[ns] {
					w.hist.Add(w.do(wk, ns, k, Write))
					w.hist.Add(w.do(wk, ns, k, Read))
				}
			}
		})
	}
	wg.Wait()
}

// finalReads reads every key of the run through every node, from inside
// the node's namespace.
func finalReads(w *workload, keys [][2]string) {
	var wg sync.WaitGroup
	for _, wk := range w.workers {
		if wk.via == "" {
			continue
		}
		wg.Go(func() {
			for _, k := range keys {
				w.hist.Add(w.do(wk, k[0], k[1], Read))
			}
		})
	}
	wg.Wait()
}
