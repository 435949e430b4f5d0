package config_test

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/config"
)

// designExample is the example of DESIGN.md.
const designExample = `
backends:
  main: {driver: postgres, dsn: "postgres://app@127.0.0.1:5432/app?sslmode=disable"}
  local: {driver: sqlite, path: ./data/app.db}          # the default when none is given
namespaces:
  users:
    backend: main
    read: through            # aside | through
    write: behind            # aside | through | behind
    ttl: 30m
    ttl_jitter: 0.1          # fraction of ttl, spreads expiries
    negative_ttl: 30s
    refresh_ahead: 0.8       # reload hot entries after 80% of ttl; 0 = off
    load_sql:   SELECT profile FROM users WHERE id = $1
    upsert_sql: INSERT INTO users (id, profile) VALUES ($1, $2)
                ON CONFLICT (id) DO UPDATE SET profile = excluded.profile
    delete_sql: DELETE FROM users WHERE id = $1
    write_behind: {flush_interval: 1s, batch_size: 500, max_pending: 1000000}
`

func TestParse_DesignExample(t *testing.T) {
	f, err := config.Parse([]byte(designExample), "/var/lib/ringcache")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := f.Backends["main"], (config.Backend{Driver: "postgres", DSN: "postgres://app@127.0.0.1:5432/app?sslmode=disable"}); got != want {
		t.Errorf("backends.main = %+v, want %+v", got, want)
	}
	if got, want := f.Backends["local"], (config.Backend{Driver: "sqlite", Path: "./data/app.db"}); got != want {
		t.Errorf("backends.local = %+v, want %+v", got, want)
	}
	if len(f.Namespaces) != 1 {
		t.Fatalf("namespaces = %v, want only users (no default namespace added)", keys(f.Namespaces))
	}
	ns, ok := f.Namespaces["users"]
	if !ok {
		t.Fatal("namespace users missing")
	}
	want := config.Namespace{
		Backend:       "main",
		Read:          config.ModeThrough,
		Write:         config.ModeBehind,
		RefreshAhead:  0.8,
		TTL:           config.Duration(30 * time.Minute),
		TTLJitter:     0.1,
		NegativeTTL:   config.Duration(30 * time.Second),
		LoadTimeout:   config.Duration(config.DefaultLoadTimeout),
		MaxKeyBytes:   config.DefaultMaxKeyBytes,
		MaxValueBytes: config.DefaultMaxValueBytes,
		LoadSQL:       "SELECT profile FROM users WHERE id = $1",
		UpsertSQL:     "INSERT INTO users (id, profile) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET profile = excluded.profile",
		DeleteSQL:     "DELETE FROM users WHERE id = $1",
		WriteBehind: config.WriteBehind{
			FlushInterval: config.Duration(time.Second),
			BatchSize:     500,
			MaxPending:    1000000,
			MaxBytes:      config.DefaultMaxBytes,
		},
	}
	if ns != want {
		t.Errorf("namespaces.users =\n %+v\nwant\n %+v", ns, want)
	}
	if !ns.NeedsBackend() {
		t.Error("users (read: through) does not report NeedsBackend")
	}
}

func TestParse_EmptyDocumentGetsDefaults(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":        "",
		"comment only": "# nothing configured\n",
	} {
		t.Run(name, func(t *testing.T) {
			f, err := config.Parse([]byte(doc), "/data/n1")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertDefaults(t, f, "/data/n1")
		})
	}
}

func TestDefault_MatchesEmptyDocumentAndValidates(t *testing.T) {
	f := config.Default("/data/n2")
	assertDefaults(t, f, "/data/n2")
	if err := f.Validate(); err != nil {
		t.Fatalf("Default(...).Validate() = %v", err)
	}
}

func assertDefaults(t *testing.T, f *config.File, dataDir string) {
	t.Helper()
	if got, want := keys(f.Backends), []string{config.DefaultBackendName}; !slices.Equal(got, want) {
		t.Fatalf("backends = %v, want %v", got, want)
	}
	if got, want := f.Backends[config.DefaultBackendName], (config.Backend{Driver: "sqlite", Path: dataDir + "/app.db"}); got != want {
		t.Errorf("default backend = %+v, want %+v", got, want)
	}
	if got, want := keys(f.Namespaces), []string{config.DefaultNamespace}; !slices.Equal(got, want) {
		t.Fatalf("namespaces = %v, want %v", got, want)
	}
	ns := f.Namespaces[config.DefaultNamespace]
	if ns.Read != config.ModeAside || ns.Write != config.ModeAside {
		t.Errorf("default namespace read/write = %q/%q, want aside/aside", ns.Read, ns.Write)
	}
	if ns.TTL.Std() != time.Hour {
		t.Errorf("default namespace ttl = %v, want 1h", ns.TTL.Std())
	}
	if ns.NeedsBackend() {
		t.Error("default namespace is a pure cache but reports NeedsBackend")
	}
}

func TestParse_DefaultsFillEmptyNamespaceFields(t *testing.T) {
	doc := `
namespaces:
  sessions: {}
  users:
    read: through
`
	f, err := config.Parse([]byte(doc), "/data")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, name := range []string{"sessions", "users"} {
		ns := f.Namespaces[name]
		if ns.TTL.Std() != config.DefaultTTL {
			t.Errorf("%s.ttl = %v, want %v", name, ns.TTL.Std(), config.DefaultTTL)
		}
		if ns.Write != config.ModeAside {
			t.Errorf("%s.write = %q, want aside", name, ns.Write)
		}
		if ns.LoadTimeout.Std() != config.DefaultLoadTimeout {
			t.Errorf("%s.load_timeout = %v, want %v", name, ns.LoadTimeout.Std(), config.DefaultLoadTimeout)
		}
		if ns.MaxKeyBytes != config.DefaultMaxKeyBytes || ns.MaxValueBytes != config.DefaultMaxValueBytes {
			t.Errorf("%s limits = %d/%d, want %d/%d", name, ns.MaxKeyBytes, ns.MaxValueBytes, config.DefaultMaxKeyBytes, config.DefaultMaxValueBytes)
		}
		// With a single backend, every namespace is bound to it.
		if ns.Backend != config.DefaultBackendName {
			t.Errorf("%s.backend = %q, want %q", name, ns.Backend, config.DefaultBackendName)
		}
	}
	if got := f.Namespaces["sessions"].Read; got != config.ModeAside {
		t.Errorf("sessions.read = %q, want aside", got)
	}
	if _, ok := f.Namespaces[config.DefaultNamespace]; ok {
		t.Error("default namespace added although the file defines namespaces")
	}
}

func TestParse_SizesAndDurationsAcceptUnits(t *testing.T) {
	doc := `
namespaces:
  blobs:
    ttl: 1h30m
    load_timeout: 250ms
    max_key_bytes: 512
    max_value_bytes: 64KiB
`
	f, err := config.Parse([]byte(doc), "/data")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ns := f.Namespaces["blobs"]
	if ns.TTL.Std() != 90*time.Minute || ns.LoadTimeout.Std() != 250*time.Millisecond {
		t.Errorf("ttl/load_timeout = %v/%v, want 1h30m/250ms", ns.TTL.Std(), ns.LoadTimeout.Std())
	}
	if ns.MaxKeyBytes != 512 || ns.MaxValueBytes != 64<<10 {
		t.Errorf("max_key_bytes/max_value_bytes = %d/%d, want 512/65536", ns.MaxKeyBytes, ns.MaxValueBytes)
	}
}

func TestParse_InvalidInputNamesTheField(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		// every substring must appear in the error message.
		want []string
	}{
		{
			name: "unknown key",
			doc:  "namespaces:\n  users:\n    tll: 30m\n",
			want: []string{"tll", "line 3"},
		},
		{
			// A decode error has no field path; it names the line and the value.
			name: "bad duration",
			doc:  "namespaces:\n  users:\n    ttl: 5 minutes\n",
			want: []string{"line 3", `"5 minutes"`, "not a duration"},
		},
		{
			name: "bad size",
			doc:  "namespaces:\n  users:\n    max_value_bytes: huge\n",
			want: []string{"line 3", `"huge"`, "not a size"},
		},
		{
			name: "unknown driver",
			doc:  "backends:\n  main: {driver: mysql, dsn: x}\n",
			want: []string{"backends.main.driver", `"mysql"`},
		},
		{
			name: "missing driver",
			doc:  "backends:\n  main: {dsn: x}\n",
			want: []string{"backends.main.driver", "required"},
		},
		{
			name: "missing dsn",
			doc:  "backends:\n  main: {driver: postgres}\n",
			want: []string{"backends.main.dsn", "required"},
		},
		{
			name: "missing sqlite path",
			doc:  "backends:\n  main: {driver: sqlite}\n",
			want: []string{"backends.main.path", "required"},
		},
		{
			name: "namespace backend not defined",
			doc:  "backends:\n  main: {driver: sqlite, path: a.db}\nnamespaces:\n  users: {backend: replica, read: through}\n",
			want: []string{"namespaces.users.backend", `"replica"`, "not defined", "[main]"},
		},
		{
			name: "backend ambiguous",
			doc:  "backends:\n  a: {driver: sqlite, path: a.db}\n  b: {driver: sqlite, path: b.db}\nnamespaces:\n  users: {read: through}\n",
			want: []string{"namespaces.users.backend", "required", "[a b]"},
		},
		{
			name: "read mode sideways",
			doc:  "namespaces:\n  users: {read: sideways}\n",
			want: []string{"namespaces.users.read", `"sideways"`},
		},
		{
			name: "write mode unknown",
			doc:  "namespaces:\n  users: {write: around}\n",
			want: []string{"namespaces.users.write", `"around"`, "not a write mode"},
		},
		{
			name: "write_behind settings without write: behind",
			doc:  "namespaces:\n  users: {write: through, write_behind: {batch_size: 10}}\n",
			want: []string{"namespaces.users.write_behind", "needs write: behind"},
		},
		{
			name: "batch_size too large",
			doc:  "namespaces:\n  users: {write: behind, write_behind: {batch_size: 100000}}\n",
			want: []string{"namespaces.users.write_behind.batch_size", "100000"},
		},
		{
			name: "replicas 6",
			doc:  "namespaces:\n  users: {write: behind, write_behind: {replicas: 6}}\n",
			want: []string{"namespaces.users.write_behind.replicas", "between 1 and 5", "6"},
		},
		{
			name: "min_replicas above replicas",
			doc:  "namespaces:\n  users: {write: behind, write_behind: {replicas: 2, min_replicas: 3}}\n",
			want: []string{"namespaces.users.write_behind.min_replicas", "between 1 and replicas (2)", "3"},
		},
		{
			name: "ttl_jitter 1.5",
			doc:  "namespaces:\n  users: {ttl_jitter: 1.5}\n",
			want: []string{"namespaces.users.ttl_jitter", "1.5"},
		},
		{
			name: "ttl_jitter negative",
			doc:  "namespaces:\n  users: {ttl_jitter: -0.1}\n",
			want: []string{"namespaces.users.ttl_jitter"},
		},
		{
			name: "negative ttl",
			doc:  "namespaces:\n  users: {ttl: -1s}\n",
			want: []string{"namespaces.users.ttl"},
		},
		{
			name: "negative negative_ttl",
			doc:  "namespaces:\n  users: {negative_ttl: -1s}\n",
			want: []string{"namespaces.users.negative_ttl"},
		},
		{
			name: "refresh_ahead on a read-aside namespace",
			doc:  "namespaces:\n  users: {refresh_ahead: 0.8}\n",
			want: []string{"namespaces.users.refresh_ahead", "needs read: through"},
		},
		{
			name: "refresh_ahead 1",
			doc:  "namespaces:\n  users: {read: through, refresh_ahead: 1}\n",
			want: []string{"namespaces.users.refresh_ahead", "[0, 1)"},
		},
		{
			name: "max_value_bytes too large",
			doc:  "namespaces:\n  users: {max_value_bytes: 1GiB}\n",
			want: []string{"namespaces.users.max_value_bytes"},
		},
		{
			name: "max_key_bytes too large",
			doc:  "namespaces:\n  users: {max_key_bytes: 1MiB}\n",
			want: []string{"namespaces.users.max_key_bytes"},
		},
		{
			name: "sql on a pure cache namespace",
			doc:  "namespaces:\n  users: {load_sql: SELECT 1}\n",
			want: []string{"namespaces.users", "SQL"},
		},
		{
			name: "ring load below 1",
			doc:  "ring: {load: 0.5}\n",
			want: []string{"ring.load"},
		},
		{
			name: "negative partitions",
			doc:  "ring: {partitions: -1}\n",
			want: []string{"ring.partitions"},
		},
		{
			name: "partitions not a power of two",
			doc:  "ring: {partitions: 271}\n",
			want: []string{"ring.partitions", "power of two"},
		},
		{
			name: "more partitions than slots",
			doc:  "ring: {partitions: 32768}\n",
			want: []string{"ring.partitions", "16384"},
		},
		{
			name: "negative max_conns",
			doc:  "backends:\n  main: {driver: sqlite, path: a.db, max_conns: -1}\n",
			want: []string{"backends.main.max_conns"},
		},
		{
			name: "wrong yaml type",
			doc:  "namespaces:\n  users:\n    ttl: [1m]\n",
			want: []string{"line 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := config.Parse([]byte(tt.doc), "/data")
			if err == nil {
				t.Fatalf("Parse accepted invalid input, got %+v", f)
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			if f != nil {
				t.Errorf("Parse returned a config alongside error %q", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidate_DoesNotMutateConfig(t *testing.T) {
	f := &config.File{
		Backends:   map[string]config.Backend{"main": {Driver: "sqlite", Path: "a.db"}},
		Namespaces: map[string]config.Namespace{"users": {Read: config.ModeAside, Write: config.ModeAside}},
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if ns := f.Namespaces["users"]; ns.TTL != 0 || ns.Backend != "" {
		t.Errorf("Validate changed the namespace: %+v", ns)
	}
}

func TestValidate_EmptyModesAreRejected(t *testing.T) {
	// Validate does not apply defaults; an unset read mode is an error.
	f := &config.File{Namespaces: map[string]config.Namespace{"users": {}}}
	err := f.Validate()
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "namespaces.users.read") {
		t.Fatalf("Validate = %v, want ErrInvalid naming namespaces.users.read", err)
	}
}

func TestLoadFile_ErrorNamesThePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ringcache.yaml")
	if err := os.WriteFile(path, []byte("namespaces:\n  users: {read: sideways}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.LoadFile(path, dir)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("LoadFile = %v, want ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "namespaces.users.read") {
		t.Errorf("error %q does not name both the file and the field", err)
	}

	if _, err := config.LoadFile(filepath.Join(dir, "missing.yaml"), dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile(missing) = %v, want os.ErrNotExist", err)
	}

	if err := os.WriteFile(path, []byte(designExample), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.LoadFile(path, dir)
	if err != nil {
		t.Fatalf("LoadFile(design example): %v", err)
	}
	if f.Namespaces["users"].TTL.Std() != 30*time.Minute {
		t.Errorf("users.ttl = %v, want 30m", f.Namespaces["users"].TTL.Std())
	}
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
