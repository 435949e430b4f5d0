// Package config reads ringcache.yaml: the backends, the namespaces and the
// ring shape that every node of a cluster must share. Node-local settings
// (name, addresses, data dir) are flags of ringcached.
//
// Load decodes strictly (an unknown key is an error) and Validate names the
// offending field, as in `namespaces.users.ttl: must be positive`.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"go.yaml.in/yaml/v3"

	"github.com/ringcache/ringcache/pkg/ring"
)

// Read and write modes of a namespace.
const (
	ModeAside   = "aside"
	ModeThrough = "through"
	ModeBehind  = "behind"
)

// Defaults applied by Load to fields left empty.
const (
	DefaultTTL           = time.Hour
	DefaultMaxKeyBytes   = 1024
	DefaultMaxValueBytes = 1 << 20
	DefaultLoadTimeout   = 10 * time.Second
	// DefaultBackendName is the embedded SQLite backend used when the file
	// defines none.
	DefaultBackendName = "local"
	// DefaultNamespace is the pure cache namespace served when the file
	// defines none.
	DefaultNamespace = "default"
	// MaxValueBytesLimit caps max_value_bytes: the store weighs entries in 32 bits.
	MaxValueBytesLimit = 512 << 20
)

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid config")

// File is the content of ringcache.yaml.
type File struct {
	Ring       Ring                 `yaml:"ring"`
	Backends   map[string]Backend   `yaml:"backends"`
	Namespaces map[string]Namespace `yaml:"namespaces"`
	Auth       *Auth                `yaml:"auth"` // nil: no auth section, every caller may do everything
	RESP       RESP                 `yaml:"resp"`
	Prewarm    Prewarm              `yaml:"prewarm"`
}

// Ring fixes the shape of the hash ring; all nodes must agree on it.
type Ring struct {
	Partitions int     `yaml:"partitions"` // a power of two from 256 to 16384; default 4096
	Load       float64 `yaml:"load"`       // bounded-load factor of the first table's placement, ≥ 1; default 1.25
}

// Backend is one database.
type Backend struct {
	Driver   string `yaml:"driver"` // postgres | sqlite
	DSN      string `yaml:"dsn"`    // postgres connection string
	Path     string `yaml:"path"`   // sqlite file; relative paths are relative to the working directory
	MaxConns int    `yaml:"max_conns"`
}

// Namespace is one keyspace with its policies.
type Namespace struct {
	Backend       string      `yaml:"backend"`
	Read          string      `yaml:"read"`  // aside | through
	Write         string      `yaml:"write"` // aside | through | behind
	TTL           Duration    `yaml:"ttl"`
	TTLJitter     float64     `yaml:"ttl_jitter"`
	NegativeTTL   Duration    `yaml:"negative_ttl"`
	RefreshAhead  float64     `yaml:"refresh_ahead"` // short for refresh: {mode: threshold, ahead: X}
	Refresh       Refresh     `yaml:"refresh"`       // see Refresh
	LoadTimeout   Duration    `yaml:"load_timeout"`
	MaxLoads      int         `yaml:"max_concurrent_loads"` // loads in flight before misses get RESOURCE_EXHAUSTED
	MaxKeyBytes   Size        `yaml:"max_key_bytes"`
	MaxValueBytes Size        `yaml:"max_value_bytes"`
	LoadSQL       string      `yaml:"load_sql"`
	UpsertSQL     string      `yaml:"upsert_sql"`
	DeleteSQL     string      `yaml:"delete_sql"`
	WriteBehind   WriteBehind `yaml:"write_behind"`
	Audit         bool        `yaml:"audit"`     // audit-log every access (internal/audit)
	Sensitive     bool        `yaml:"sensitive"` // values sealed on disk and never logged
}

// WriteBehind tunes write-behind. The journal is one per node: with several
// write-behind namespaces, the node flushes at the shortest flush_interval,
// the largest batch_size, and bounds its journal by the largest max_pending
// and max_bytes.
type WriteBehind struct {
	FlushInterval Duration `yaml:"flush_interval"` // default 1s
	BatchSize     int      `yaml:"batch_size"`     // default 500
	MaxPending    int      `yaml:"max_pending"`    // default 1000000
	MaxBytes      Size     `yaml:"max_bytes"`      // default 1GiB
	// Replicas is how many nodes hold each write before it is acknowledged,
	// the owner included (1 to 5); unset means 2, or 1 while the cluster
	// has one member. MinReplicas is the least number of copies a write is
	// acknowledged with when replicas are unreachable (1 to replicas);
	// unset means all of them.
	Replicas    int `yaml:"replicas"`
	MinReplicas int `yaml:"min_replicas"`
	// ReplicationTimeout bounds the wait for a replica's acknowledgement;
	// a replica silent that long counts as unreachable. Per node: the
	// shortest of the namespaces' wins. Unset means 2s.
	ReplicationTimeout Duration `yaml:"replication_timeout"`
}

// Defaults of WriteBehind.
const (
	DefaultFlushInterval = time.Second
	DefaultBatchSize     = 500
	DefaultMaxPending    = 1_000_000
	DefaultMaxBytes      = 1 << 30
	DefaultReplicas      = 2
	MaxReplicas          = 5
)

// NeedsBackend reports whether the namespace reads or writes a database.
func (n Namespace) NeedsBackend() bool { return n.Read != ModeAside || n.Write != ModeAside }

// Duration is a time.Duration written as "30s", "5m", "1h30m".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 30s, 5m, 1h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Size is a byte count written as a number or with a unit ("64KiB", "1MB").
type Size uint64

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	var raw string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(raw)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a size (use e.g. 1024, 64KiB, 1MiB)", n.Line, raw)
	}
	*s = Size(v)
	return nil
}

// Default returns the configuration used without a config file: one pure
// cache namespace, "default", and the embedded SQLite backend under dataDir.
func Default(dataDir string) *File {
	f := &File{}
	f.applyDefaults(dataDir)
	return f
}

// LoadFile reads and validates the file at path.
func LoadFile(path, dataDir string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b, dataDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Parse decodes, defaults and validates a config document.
func Parse(doc []byte, dataDir string) (*File, error) {
	f := &File{}
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, describeDecodeError(doc, err))
	}
	if f.Auth == nil && hasKey(doc, "auth") {
		f.Auth = &Auth{} // "auth:" with nothing under it still turns authorization on
	}
	f.applyDefaults(dataDir)
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) applyDefaults(dataDir string) {
	if len(f.Backends) == 0 {
		f.Backends = map[string]Backend{
			DefaultBackendName: {Driver: "sqlite", Path: dataDir + "/app.db"},
		}
	}
	if len(f.Namespaces) == 0 {
		f.Namespaces = map[string]Namespace{DefaultNamespace: {}}
	}
	for name, ns := range f.Namespaces {
		if ns.Read == "" {
			ns.Read = ModeAside
		}
		if ns.Write == "" {
			ns.Write = ModeAside
		}
		if ns.TTL == 0 {
			ns.TTL = Duration(DefaultTTL)
		}
		if ns.LoadTimeout == 0 {
			ns.LoadTimeout = Duration(DefaultLoadTimeout)
		}
		if ns.MaxKeyBytes == 0 {
			ns.MaxKeyBytes = DefaultMaxKeyBytes
		}
		if ns.MaxValueBytes == 0 {
			ns.MaxValueBytes = DefaultMaxValueBytes
		}
		if ns.Write == ModeBehind {
			wb := &ns.WriteBehind
			if wb.FlushInterval == 0 {
				wb.FlushInterval = Duration(DefaultFlushInterval)
			}
			if wb.BatchSize == 0 {
				wb.BatchSize = DefaultBatchSize
			}
			if wb.MaxPending == 0 {
				wb.MaxPending = DefaultMaxPending
			}
			if wb.MaxBytes == 0 {
				wb.MaxBytes = DefaultMaxBytes
			}
		}
		if ns.Backend == "" && len(f.Backends) == 1 {
			for b := range f.Backends {
				ns.Backend = b
			}
		}
		f.Namespaces[name] = ns
	}
}

// Validate checks every field and returns the first problem, naming it.
func (f *File) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
	}
	if p := f.Ring.Partitions; p != 0 && (p < ring.MinPartitionCount || p > ring.MaxPartitionCount || p&(p-1) != 0) {
		return bad("ring.partitions", "must be a power of two from %d to %d (partitions are ranges of the %d Redis hash slots), got %d",
			ring.MinPartitionCount, ring.MaxPartitionCount, ring.Slots, p)
	}
	if f.Ring.Load != 0 && !(f.Ring.Load >= 1 && f.Ring.Load <= 8) {
		return bad("ring.load", "must be between 1 and 8, got %g", f.Ring.Load)
	}
	for _, name := range sortedKeys(f.Backends) {
		b := f.Backends[name]
		field := "backends." + name
		switch b.Driver {
		case "postgres":
			if b.DSN == "" {
				return bad(field+".dsn", "is required for driver postgres")
			}
		case "sqlite":
			if b.Path == "" {
				return bad(field+".path", "is required for driver sqlite")
			}
		case "":
			return bad(field+".driver", "is required (postgres or sqlite)")
		default:
			return bad(field+".driver", "%q is not supported (use postgres or sqlite)", b.Driver)
		}
		if b.MaxConns < 0 {
			return bad(field+".max_conns", "must not be negative")
		}
	}
	for _, name := range sortedKeys(f.Namespaces) {
		ns := f.Namespaces[name]
		field := "namespaces." + name
		if name == "" || len(name) > 128 {
			return bad("namespaces", "name %q must be 1 to 128 bytes", name)
		}
		switch ns.Read {
		case ModeAside, ModeThrough:
		default:
			return bad(field+".read", "%q is not a read mode (use aside or through)", ns.Read)
		}
		switch ns.Write {
		case ModeAside, ModeThrough, ModeBehind:
		default:
			return bad(field+".write", "%q is not a write mode (use aside, through or behind)", ns.Write)
		}
		if ns.TTL < 0 {
			return bad(field+".ttl", "must be positive")
		}
		if ns.NegativeTTL < 0 {
			return bad(field+".negative_ttl", "must not be negative")
		}
		if ns.LoadTimeout < 0 {
			return bad(field+".load_timeout", "must be positive")
		}
		if ns.MaxLoads < 0 {
			return bad(field+".max_concurrent_loads", "must be positive")
		}
		if ns.TTLJitter < 0 || ns.TTLJitter >= 1 {
			return bad(field+".ttl_jitter", "must be in [0, 1), got %g", ns.TTLJitter)
		}
		if err := ns.validateRefresh(bad, field); err != nil {
			return err
		}
		if ns.Write == ModeBehind {
			wb := ns.WriteBehind
			switch {
			case wb.FlushInterval <= 0:
				return bad(field+".write_behind.flush_interval", "must be positive")
			case wb.BatchSize < 1 || wb.BatchSize > 10000:
				return bad(field+".write_behind.batch_size", "must be between 1 and 10000, got %d", wb.BatchSize)
			case wb.MaxPending < 1:
				return bad(field+".write_behind.max_pending", "must be positive, got %d", wb.MaxPending)
			case wb.ReplicationTimeout < 0:
				return bad(field+".write_behind.replication_timeout", "must be positive")
			case wb.Replicas < 0 || wb.Replicas > MaxReplicas:
				return bad(field+".write_behind.replicas", "must be between 1 and %d, got %d", MaxReplicas, wb.Replicas)
			case wb.MinReplicas < 0 || wb.MinReplicas > max(wb.Replicas, DefaultReplicas):
				return bad(field+".write_behind.min_replicas", "must be between 1 and replicas (%d), got %d", max(wb.Replicas, DefaultReplicas), wb.MinReplicas)
			}
		} else if ns.WriteBehind != (WriteBehind{}) {
			return bad(field+".write_behind", "needs write: behind")
		}
		if ns.MaxValueBytes > MaxValueBytesLimit {
			return bad(field+".max_value_bytes", "must be at most %d", MaxValueBytesLimit)
		}
		if ns.MaxKeyBytes > 64<<10 {
			return bad(field+".max_key_bytes", "must be at most 65536")
		}
		if !ns.NeedsBackend() {
			if ns.LoadSQL != "" || ns.UpsertSQL != "" || ns.DeleteSQL != "" {
				return bad(field, "SQL templates need read: through or a write mode other than aside")
			}
			continue
		}
		if ns.Backend == "" {
			return bad(field+".backend", "is required when several backends are defined (have %v)", sortedKeys(f.Backends))
		}
		if _, ok := f.Backends[ns.Backend]; !ok {
			return bad(field+".backend", "%q is not defined under backends (have %v)", ns.Backend, sortedKeys(f.Backends))
		}
	}
	if err := f.validateRESP(); err != nil {
		return err
	}
	if err := f.validatePrewarm(); err != nil {
		return err
	}
	return f.validateAuth()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type \S+$`)

// describeDecodeError rewrites yaml's "line 5: field tll not found in type
// config.Namespace" as "namespaces.users.tll (line 5): unknown key", naming
// the key by its path as Validate does.
func describeDecodeError(doc []byte, err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var root yaml.Node
	_ = yaml.Unmarshal(doc, &root)
	msgs := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		msgs[i] = e
		m := unknownField.FindStringSubmatch(e)
		if m == nil {
			continue
		}
		line, _ := strconv.Atoi(m[1])
		if path := pathAt(&root, line, m[2], ""); path != "" {
			msgs[i] = fmt.Sprintf("%s (line %d): unknown key", path, line)
		}
	}
	return strings.Join(msgs, "; ")
}

// pathAt returns the dotted path of the mapping key named key on line line.
func pathAt(n *yaml.Node, line int, key, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if p := pathAt(c, line, key, prefix); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if k.Line == line && k.Value == key {
				return p
			}
			if found := pathAt(v, line, key, p); found != "" {
				return found
			}
		}
	}
	return ""
}
