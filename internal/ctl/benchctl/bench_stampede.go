package benchctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/ctl"
	"github.com/ringcache/ringcache/pkg/strategy"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

type stampedeOptions struct {
	namespace      string
	naiveNamespace string
	configPath     string
	key            string
	concurrency    int
}

// stampedeResult is what `bench stampede` prints.
type stampedeResult struct {
	Key         string `json:"key"`
	Concurrency int    `json:"concurrency"`
	Nodes       int    `json:"nodes"`
	// Read-through through ringcache: database loads counted by the nodes.
	Namespace      string  `json:"namespace"`
	RingcacheLoads uint64  `json:"ringcache_loads"`
	RingcacheMs    float64 `json:"ringcache_ms"`
	// Naive cache-aside (get, on a miss query the database, set), present
	// with --config: database queries made by the callers.
	NaiveNamespace string  `json:"naive_namespace,omitempty"`
	NaiveLoads     *uint64 `json:"naive_loads,omitempty"`
	NaiveMs        float64 `json:"naive_ms,omitempty"`
	Errors         uint64  `json:"errors"`
}

func newStampedeCommand(g *ctl.Globals) *cobra.Command {
	s := &stampedeOptions{}
	cmd := &cobra.Command{
		Use:   "stampede",
		Short: "Count database loads for many concurrent Gets of one cold key",
		Long: "stampede sends --concurrency Gets of one cold key at once, spread over every\n" +
			"alive member (the non-owners forward to the owner), in a read-through\n" +
			"namespace, and reports how many database loads the nodes ran (their\n" +
			"loads counters, before and after).\n\n" +
			"With --config (the cluster's ringcache.yaml) it then does the same with naive\n" +
			"cache-aside: each caller Gets the key from --naive-namespace (a cache-only\n" +
			"namespace), and on a miss runs the read-through namespace's own load query\n" +
			"against its database and Sets the result; it reports the queries made.",
		Example: "  ringcachectl bench stampede --namespace users --concurrency 1000 --config ringcache.yaml --naive-namespace sessions",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStampede(cmd.Context(), g, cmd.OutOrStdout(), s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.namespace, "namespace", "users", "read-through namespace")
	f.StringVar(&s.naiveNamespace, "naive-namespace", "sessions", "cache-only namespace for the naive cache-aside run")
	f.StringVar(&s.configPath, "config", "", "the cluster's config file: enables the naive cache-aside run with the namespace's database and load query")
	f.StringVar(&s.key, "key", "", "the key to get (default: a fresh one, so it is cold)")
	f.IntVar(&s.concurrency, "concurrency", 1000, "concurrent Gets")
	return cmd
}

func runStampede(ctx context.Context, g *ctl.Globals, w io.Writer, s *stampedeOptions) error {
	if s.concurrency < 1 {
		return fmt.Errorf("--concurrency must be at least 1, got %d", s.concurrency)
	}
	var loader strategy.Loader
	if s.configPath != "" {
		l, closeDB, err := openLoader(ctx, s.configPath, s.namespace)
		if err != nil {
			return err
		}
		defer closeDB()
		loader = l
	}
	nodes, err := g.ConnectMembers(ctx)
	if err != nil {
		return err
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	key := s.key
	if key == "" {
		key = "stampede-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	res := &stampedeResult{Key: key, Concurrency: s.concurrency, Nodes: len(nodes), Namespace: s.namespace}

	before, err := namespaceLoads(ctx, g, s.namespace)
	if err != nil {
		return err
	}
	var errs atomic.Uint64
	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, &err)
	}
	took := all(s.concurrency, func(i int) {
		n := nodes[i%len(nodes)]
		if _, err := n.Get(ctx, &ringcachev1.GetRequest{Namespace: s.namespace, Key: key}); err != nil {
			fail(err)
		}
	})
	after, err := namespaceLoads(ctx, g, s.namespace)
	if err != nil {
		return err
	}
	res.RingcacheLoads, res.RingcacheMs = after-before, ms(took)

	if loader != nil {
		res.NaiveNamespace = s.naiveNamespace
		var queries atomic.Uint64
		took := all(s.concurrency, func(i int) {
			n := nodes[i%len(nodes)]
			got, err := n.Get(ctx, &ringcachev1.GetRequest{Namespace: s.naiveNamespace, Key: key})
			if err != nil {
				fail(err)
				return
			}
			if got.Found {
				return
			}
			queries.Add(1)
			v, found, err := loader.Load(ctx, key)
			if err != nil {
				fail(err)
				return
			}
			if found {
				if _, err := n.Set(ctx, &ringcachev1.SetRequest{Namespace: s.naiveNamespace, Key: key, Value: v}); err != nil {
					fail(err)
				}
			}
		})
		q := queries.Load()
		res.NaiveLoads, res.NaiveMs = &q, ms(took)
	}
	res.Errors = errs.Load()
	if err := g.Render(w, res, func(w io.Writer) error { return printStampede(w, res) }); err != nil {
		return err
	}
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("%d of the calls failed; first: %w", res.Errors, *p)
	}
	return nil
}

func printStampede(w io.Writer, r *stampedeResult) error {
	t := ctl.NewTable(w, "STRATEGY", "NAMESPACE", "CONCURRENT GETS", "NODES", "DATABASE LOADS", "TOOK ms")
	t.Row("ringcache read-through", r.Namespace, r.Concurrency, r.Nodes, r.RingcacheLoads, fmt.Sprintf("%.1f", r.RingcacheMs))
	if r.NaiveLoads != nil {
		t.Row("naive cache-aside", r.NaiveNamespace, r.Concurrency, r.Nodes, *r.NaiveLoads, fmt.Sprintf("%.1f", r.NaiveMs))
	}
	return t.Flush()
}

// all runs fn(0) … fn(n-1) on n goroutines released together, and returns
// the time from the release until the last returned.
func all(n int, fn func(i int)) time.Duration {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			fn(i)
		})
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	return time.Since(t0)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// namespaceLoads sums the namespace's backend loads over every alive member.
func namespaceLoads(ctx context.Context, g *ctl.Globals, namespace string) (uint64, error) {
	stats, err := g.Stats(ctx)
	if err != nil {
		return 0, err
	}
	var loads uint64
	seen := false
	for _, s := range stats {
		for _, ns := range s.GetNamespaces() {
			if ns.GetName() == namespace {
				loads += ns.GetLoads()
				seen = true
			}
		}
	}
	if !seen {
		return 0, fmt.Errorf("no node reports namespace %q", namespace)
	}
	return loads, nil
}

// openLoader opens the backend of namespace as the cluster's config file
// defines it, for the naive run to query directly.
func openLoader(ctx context.Context, path, namespace string) (strategy.Loader, func(), error) {
	file, err := config.LoadFile(path, "")
	if err != nil {
		return nil, nil, err
	}
	nc, ok := file.Namespaces[namespace]
	if !ok || nc.Read != config.ModeThrough {
		return nil, nil, fmt.Errorf("%s: namespace %q is not a read-through namespace there", path, namespace)
	}
	bc, ok := file.Backends[nc.Backend]
	if !ok {
		return nil, nil, errors.New(path + ": namespace " + namespace + " has no backend")
	}
	db, err := backend.Open(ctx, backend.Config{Driver: bc.Driver, DSN: bc.DSN, Path: bc.Path, MaxConns: bc.MaxConns})
	if err != nil {
		return nil, nil, fmt.Errorf("backends.%s: %w", nc.Backend, err)
	}
	tbl, err := db.Table(backend.TableSpec{Namespace: namespace, LoadSQL: nc.LoadSQL})
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("namespaces.%s: %w", namespace, err)
	}
	return tbl, func() { _ = db.Close() }, nil
}
