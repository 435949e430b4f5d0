// Package daemon is ringcached's command line: flags and ringcache.yaml are
// turned into a node.Config, the backends are opened, and the node runs
// until SIGTERM or SIGINT, when it leaves the cluster and exits 0. SIGHUP
// reloads the gossip keys, the auth section, the tokens and TLS files, and
// reopens the audit log (reload.go).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/internal/buildinfo"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/logx"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/telemetry"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Flags are ringcached's command-line settings.
type Flags struct {
	Name                string
	GRPCAddr            string
	AdvertiseGRPCAddr   string
	GossipAddr          string
	AdvertiseGossipAddr string
	Join                []string
	DataDir             string
	ConfigPath          string
	MaxMemory           string
	// HotCacheBytes bounds the hot cache of keys other nodes own ("0"
	// disables it); HotCacheMinRate and HotCacheTTL tune it. See
	// node.Config.
	HotCacheBytes    string
	HotCacheMinRate  float64
	HotCacheTTL      time.Duration
	GossipPreset     string
	LogLevel         string
	LogFormat        string
	ShutdownTimeout  time.Duration
	BootstrapTimeout time.Duration
	BootstrapAlone   bool
	FlushTimeout     time.Duration
	WarmHandover     bool
	GossipKeyFile    string
	// AdminAddr is the listen address of /metrics, /healthz and /readyz;
	// empty disables them. AdminAddrSet tells whether it was given on the
	// command line (a taken default address is not fatal; see startAdmin).
	AdminAddr    string
	AdminAddrSet bool
	// Pprof serves /debug/pprof on the admin address.
	Pprof    bool
	Security SecurityFlags
	Limits   LimitFlags
	Prewarm  PrewarmFlags

	// RESPAddr opens the Redis protocol door; empty keeps it closed.
	RESPAddr, AdvertiseRESPAddr string
}

// NewCommand returns the ringcached root command.
func NewCommand() *cobra.Command {
	f := &Flags{}
	cmd := &cobra.Command{
		Use:     "ringcached",
		Version: buildinfo.Version(),
		Short:   "ringcache node: a gRPC distributed cache that gossips, shards and loads each key once",
		Example: `  ringcached --name n1 --grpc-addr 127.0.0.1:7101 --gossip-addr 127.0.0.1:7201 \
    --join 127.0.0.1:7201,127.0.0.1:7202 --data-dir ./data/n1 --config ringcache.yaml`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			f.AdminAddrSet = cmd.Flags().Changed("admin-addr")
			return Run(ctx, stop, *f, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	host, _ := os.Hostname()
	fl.StringVar(&f.Name, "name", host, "node name, unique in the cluster")
	fl.StringVar(&f.GRPCAddr, "grpc-addr", "127.0.0.1:7101", "gRPC listen address")
	fl.StringVar(&f.AdvertiseGRPCAddr, "advertise-grpc-addr", "", "gRPC address peers dial (default: the listen address)")
	fl.StringVar(&f.GossipAddr, "gossip-addr", "127.0.0.1:7201", "gossip (memberlist) listen address, TCP and UDP")
	fl.StringVar(&f.AdvertiseGossipAddr, "advertise-gossip-addr", "", "gossip address peers use (default: the listen address)")
	fl.StringVar(&f.RESPAddr, "resp-addr", "", "Redis protocol (RESP2/RESP3) listen address, e.g. 127.0.0.1:6379; off unless given (docs/resp.md)")
	fl.StringVar(&f.AdvertiseRESPAddr, "advertise-resp-addr", "", "RESP address Redis Cluster clients are sent to (default: the listen address)")
	fl.StringSliceVar(&f.Join, "join", nil, "seed gossip addresses or a DNS name resolving to peers (repeatable or comma-separated)")
	fl.StringVar(&f.DataDir, "data-dir", "./data", "directory for this node's files (the default SQLite database lives here)")
	fl.StringVar(&f.ConfigPath, "config", "", "path to ringcache.yaml (default: one pure-cache namespace \"default\"); SIGHUP re-reads its auth section, the rest needs a restart")
	fl.StringVar(&f.MaxMemory, "max-memory", "256MiB", "memory bound of the local cache (bytes, or with a unit: 512MiB, 2GiB)")
	fl.StringVar(&f.HotCacheBytes, "hot-cache-bytes", "0", "memory bound of the hot cache: values of keys other nodes own that this node is asked for often, served here and invalidated by the owners (bytes or with a unit, e.g. 16MiB; 0 disables it)")
	fl.Float64Var(&f.HotCacheMinRate, "hot-cache-min-rate", node.DefaultHotCacheMinRate, "Gets per second of one key through this node at which the hot cache keeps it")
	fl.DurationVar(&f.HotCacheTTL, "hot-cache-ttl", node.DefaultHotCacheTTL, "how long a hot-cache entry is served at most; bounds staleness should an invalidation stream stall")
	fl.StringVar(&f.GossipPreset, "gossip-preset", membership.PresetLAN, "failure-detection timers: lan or local")
	fl.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.LogFormat, "log-format", "text", "text or json")
	fl.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a graceful stop may take before open calls are cut")
	fl.StringVar(&f.GossipKeyFile, "gossip-key-file", "", "file holding the gossip encryption keys, one base64 key (16, 24 or 32 bytes) per line, the first primary (or a single raw key); SIGHUP re-reads it to rotate keys, and the node rewrites it when ringcachectl gossip-keys changes them")
	fl.DurationVar(&f.FlushTimeout, "flush-timeout", node.DefaultFlushTimeout, "how long a graceful stop may spend writing the write-behind journal to the database (the rest is flushed on the next start)")
	fl.BoolVar(&f.WarmHandover, "warm-handover", true, "when partitions change owner (a join, a graceful leave), the new owner pulls the entries the previous owner had cached instead of loading them from the database; false starts moved partitions cold")
	fl.StringVar(&f.AdminAddr, "admin-addr", DefaultAdminAddr, "HTTP listen address of /metrics (Prometheus), /healthz and /readyz; empty disables them")
	f.Security.register(fl)
	f.Limits.register(fl)
	f.Prewarm.register(fl)
	fl.BoolVar(&f.Pprof, "pprof", false, "also serve the Go profiler at /debug/pprof/ on --admin-addr (off by default: profiles expose internals)")
	fl.DurationVar(&f.BootstrapTimeout, "bootstrap-timeout", node.DefaultBootstrap, "how long to wait for a peer from --join before deciding what to do alone (see --bootstrap-alone)")
	fl.BoolVar(&f.BootstrapAlone, "bootstrap-alone", false, "serve as a cluster of one when no seed from --join has answered within --bootstrap-timeout (a single-node cluster, or the first node of a new one); a node that seeds refuse never serves alone")
	return cmd
}

// Run starts a node from f and blocks until ctx ends, then stops it
// gracefully. stopSignals, called once the stop begins, restores the default
// signal handling.
func Run(ctx context.Context, stopSignals func(), f Flags, logOut io.Writer) error {
	log, err := newLogger(f, logOut)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	file := config.Default(f.DataDir)
	if f.ConfigPath != "" {
		if file, err = config.LoadFile(f.ConfigPath, f.DataDir); err != nil {
			return err
		}
	}
	gossipKeys, err := readGossipKeys(f.GossipKeyFile)
	if err != nil {
		return err
	}
	maxMem, err := humanize.ParseBytes(f.MaxMemory)
	if err != nil || maxMem == 0 {
		return fmt.Errorf("--max-memory %q is not a positive size (use e.g. 256MiB)", f.MaxMemory)
	}
	hotBytes, err := parseHotCache(f)
	if err != nil {
		return err
	}
	pw, err := prewarmConfig(f.Prewarm, file.Prewarm, f.DataDir)
	if err != nil {
		return err
	}
	applyMemoryLimit(log, maxMem, hotBytes, os.Getenv)
	defer keepGCFloor(log, gcHeapFloor, os.Getenv)()
	specs, dbs, err := openNamespaces(ctx, log, file)
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	if err != nil {
		return err
	}
	jc := journalConfig(f.DataDir, file)
	if jc.Path != "" {
		log.Info("write-behind journal", "path", jc.Path)
	}
	// Telemetry outlives the node: the last spans are flushed after it stops.
	tel, err := telemetry.Setup(ctx, telemetry.Config{Node: f.Name, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(tctx); err != nil {
			log.Warn("telemetry shutdown", "err", err)
		}
	}()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("telemetry", "err", err) }))
	var running atomic.Pointer[node.Node] // set once node.New returns
	admin, err := startAdmin(f, tel.Handler(telemetry.HandlerOptions{Pprof: f.Pprof, Ready: func() error {
		if n := running.Load(); n != nil {
			return n.NotReady()
		}
		return errors.New("starting")
	}}), log)
	if err != nil {
		return err
	}
	defer func() {
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		admin.shutdown(actx)
	}()
	cfg := node.Config{
		Name:                f.Name,
		GRPCAddr:            f.GRPCAddr,
		AdvertiseGRPCAddr:   f.AdvertiseGRPCAddr,
		GossipAddr:          f.GossipAddr,
		AdvertiseGossipAddr: f.AdvertiseGossipAddr,
		Join:                f.Join,
		RESP: node.RESPConfig{Addr: f.RESPAddr, AdvertiseAddr: f.AdvertiseRESPAddr, DefaultNamespace: file.RESP.DefaultNamespace,
			RedirectAll: file.RESP.Redirect == config.RedirectAlways},
		GossipPreset:       f.GossipPreset,
		GossipKeys:         gossipKeys,
		GossipKeyFile:      f.GossipKeyFile,
		Ring:               ring.Config{PartitionCount: file.Ring.Partitions, Load: file.Ring.Load},
		MaxMemory:          maxMem,
		HotCacheBytes:      hotBytes,
		HotCacheMinRate:    f.HotCacheMinRate,
		HotCacheTTL:        f.HotCacheTTL,
		Namespaces:         specs,
		Journal:            jc,
		ClockPath:          filepath.Join(f.DataDir, "clock"),
		ReplicationTimeout: replicationTimeout(file),
		Prewarm:            pw,
		FlushTimeout:       f.FlushTimeout,
		WarmHandover:       node.WarmHandoverConfig{Disabled: !f.WarmHandover},
		BootstrapTimeout:   f.BootstrapTimeout,
		BootstrapAlone:     f.BootstrapAlone,
		Logger:             log,
		MeterProvider:      tel.MeterProvider(),
		TracerProvider:     tel.TracerProvider(),
		Propagator:         tel.Propagator(),
	}
	if err := f.Security.apply(&cfg, file, f.DataDir, log); err != nil {
		return err
	}
	if err := f.Limits.apply(&cfg); err != nil {
		return err
	}
	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	running.Store(n)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
waiting:
	for {
		select {
		case <-hup:
			reload(log, f, file, n)
		case <-ctx.Done():
			break waiting
		}
	}
	stopSignals() // a second SIGTERM/SIGINT kills a stop that hangs
	log.Info("shutting down: leaving the cluster")
	sctx, cancel := context.WithTimeout(context.Background(), f.ShutdownTimeout)
	defer cancel()
	if err := n.Close(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return nil
}

// parseHotCache checks the hot-cache flags and returns its byte bound.
// Zero values (Flags built in code) mean the defaults: off, and node's
// defaults for the rate and TTL.
func parseHotCache(f Flags) (uint64, error) {
	var b uint64
	if f.HotCacheBytes != "" {
		var err error
		if b, err = humanize.ParseBytes(f.HotCacheBytes); err != nil {
			return 0, fmt.Errorf("--hot-cache-bytes %q is not a size (use e.g. 16MiB, or 0 to disable)", f.HotCacheBytes)
		}
	}
	if f.HotCacheMinRate < 0 || math.IsNaN(f.HotCacheMinRate) || math.IsInf(f.HotCacheMinRate, 0) {
		return 0, fmt.Errorf("--hot-cache-min-rate %v must be a positive number of Gets per second", f.HotCacheMinRate)
	}
	if f.HotCacheTTL < 0 {
		return 0, fmt.Errorf("--hot-cache-ttl %v must be positive", f.HotCacheTTL)
	}
	return b, nil
}

// openNamespaces opens the backends that namespaces use and builds the node's
// namespace list. The returned DBs must be closed by the caller, also on error.
func openNamespaces(ctx context.Context, log *slog.Logger, file *config.File) ([]node.NamespaceSpec, map[string]backend.DB, error) {
	dbs := map[string]backend.DB{}
	var specs []node.NamespaceSpec
	for _, name := range sortedNames(file.Namespaces) {
		nc := file.Namespaces[name]
		spec := node.NamespaceSpec{Audit: nc.Audit, Sensitive: nc.Sensitive, Policy: strategy.Policy{
			Name:          name,
			TTL:           nc.TTL.Std(),
			TTLJitter:     nc.TTLJitter,
			NegativeTTL:   nc.NegativeTTL.Std(),
			LoadTimeout:   nc.LoadTimeout.Std(),
			MaxLoads:      nc.MaxLoads,
			MaxKeyBytes:   int(nc.MaxKeyBytes),
			MaxValueBytes: int(nc.MaxValueBytes),
		}}
		if nc.Read == config.ModeThrough {
			spec.Policy.Read = strategy.ReadThrough
		}
		spec.Policy.RefreshAhead, spec.Policy.XFetchBeta = nc.RefreshPolicy()
		switch nc.Write {
		case config.ModeThrough:
			spec.Policy.Write = strategy.WriteThrough
		case config.ModeBehind:
			spec.Policy.Write = strategy.WriteBehind
			spec.Replicas, spec.MinReplicas = nc.WriteBehind.Replicas, nc.WriteBehind.MinReplicas
		}
		if nc.NeedsBackend() {
			db, ok := dbs[nc.Backend]
			if !ok {
				bc := file.Backends[nc.Backend]
				var err error
				// Lazy: a node restarting during a database outage still
				// starts, serves from memory and keeps its journal.
				db, err = backend.Open(ctx, backend.Config{Driver: bc.Driver, DSN: bc.DSN, Path: bc.Path, MaxConns: bc.MaxConns, Lazy: true})
				if err != nil {
					return nil, dbs, fmt.Errorf("backends.%s: %w", nc.Backend, err)
				}
				pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				if err := db.Ping(pctx); err != nil {
					log.Warn("database unreachable at start; loads and flushes retry until it is back", "backend", nc.Backend, "err", err)
				}
				cancel()
				dbs[nc.Backend] = db
			}
			tbl, err := db.Table(backend.TableSpec{Namespace: name, LoadSQL: nc.LoadSQL, UpsertSQL: nc.UpsertSQL, DeleteSQL: nc.DeleteSQL})
			if err != nil {
				return nil, dbs, fmt.Errorf("namespaces.%s: %w", name, err)
			}
			if nc.Read == config.ModeThrough {
				spec.Loader = tbl
			}
			if nc.Write != config.ModeAside {
				spec.Writer = tbl
			}
		}
		specs = append(specs, spec)
	}
	shareConnections(specs, file)
	return specs, dbs, nil
}

// journalConfig returns the journal settings: <data-dir>/journal.db when a
// namespace is write-behind, with the bounds and flush settings of those
// namespaces (the shortest interval, the largest batch and bounds); no
// path when none is.
func journalConfig(dataDir string, file *config.File) node.JournalConfig {
	var jc node.JournalConfig
	for _, nc := range file.Namespaces {
		if nc.Write != config.ModeBehind {
			continue
		}
		wb := nc.WriteBehind
		if jc.Path == "" || wb.FlushInterval.Std() < jc.FlushInterval {
			jc.FlushInterval = wb.FlushInterval.Std()
		}
		jc.Path = filepath.Join(dataDir, "journal.db")
		jc.BatchSize = max(jc.BatchSize, wb.BatchSize)
		jc.MaxPending = max(jc.MaxPending, wb.MaxPending)
		jc.MaxBytes = max(jc.MaxBytes, int64(wb.MaxBytes))
	}
	return jc
}

// replicationTimeout is the shortest replication_timeout of the
// write-behind namespaces; 0 (the node's default) when none sets one.
func replicationTimeout(file *config.File) time.Duration {
	var d time.Duration
	for _, nc := range file.Namespaces {
		if t := nc.WriteBehind.ReplicationTimeout.Std(); nc.Write == config.ModeBehind && t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

func sortedNames(m map[string]config.Namespace) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func newLogger(f Flags, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", f.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(f.LogFormat) {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, errors.New("--log-format must be text or json")
	}
	// Every logger of the node shares one limit, so input from the network
	// (garbage on the gossip port, a flood of bad calls) cannot flood the
	// log: repeated lines are counted and reported (internal/logx).
	h = logx.RateLimit(h.WithAttrs([]slog.Attr{slog.String("node", f.Name)}), logx.Options{})
	return slog.New(h), nil
}

// shareConnections bounds the loads each read-through namespace runs at
// once on its database to the database's connections less one per other
// read-through namespace on it, so that one namespace's slow loads always
// leave a connection to the others.
func shareConnections(specs []node.NamespaceSpec, file *config.File) {
	loaders := map[string]int{} // backend → read-through namespaces on it
	for _, s := range specs {
		if s.Loader != nil {
			loaders[file.Namespaces[s.Policy.Name].Backend]++
		}
	}
	for i, s := range specs {
		if s.Loader == nil {
			continue
		}
		b := file.Namespaces[s.Policy.Name].Backend
		conns := file.Backends[b].MaxConns
		if conns <= 0 {
			conns = backend.DefaultMaxConns()
		}
		specs[i].Policy.LoadConcurrency = max(1, conns-(loaders[b]-1))
	}
}
