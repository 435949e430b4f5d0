// Package ctl implements ringcachectl, the operator CLI of a ringcache
// cluster. NewRootCommand builds the cobra command tree; cmd/ctl runs it.
//
// Every command dials the node at --addr and calls one Admin or Cache RPC,
// each call with its own deadline of --timeout; stats, journal, journal
// flush, flush, top and gossip-keys also dial every alive member (gossip-keys
// rotate runs each step of a key rotation on all of them before the next). Results print as tables (text/tabwriter) or, with -o json, as
// indented JSON (top: one line per snapshot). Commands return their errors instead of printing them, so the
// binary decides how to report them; gRPC failures are rewritten into
// operator-readable messages such as `NOT_FOUND: unknown namespace "x"; configured namespaces: [users]`.
//
// bench (load generation) and simulate (capacity planning) need heavy
// libraries (plotting, progress bars, Redis and database drivers) that an
// operator's CLI should not carry. They live in a second binary,
// ringcachectl-bench (package benchctl, built from cmd/ctl/bench), and
// ringcachectl runs it for them, kubectl-plugin style (see plugin.go), with
// the command line unchanged. shared.go is what benchctl builds on.
package ctl

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"

	"github.com/ringcache/ringcache/internal/buildinfo"
)

const (
	// DefaultAddr is the node asked when neither --addr nor RINGCACHE_ADDR is set.
	DefaultAddr = "127.0.0.1:7101"
	// AddrEnv names the environment variable that overrides DefaultAddr.
	AddrEnv = "RINGCACHE_ADDR"
	// TokenEnv holds the default of --token.
	TokenEnv = "RINGCACHE_TOKEN"
	// DefaultTimeout is the deadline of each RPC.
	DefaultTimeout = 5 * time.Second

	outputTable = "table"
	outputJSON  = "json"
)

// options holds the global flags shared by every command.
type options struct {
	addr    string
	output  string
	timeout time.Duration
	// TLS and token flags; creds caches their transport credentials.
	tlsCA, tlsCert, tlsKey, token string
	creds                         credentials.TransportCredentials
	// stderr takes warnings; authOff says once that a node checks no token.
	stderr  io.Writer
	authOff sync.Once
}

// NewRootCommand returns the ringcachectl command tree. The default of --addr
// is read from RINGCACHE_ADDR when the command is built.
func NewRootCommand() *cobra.Command {
	root, o := newRoot("Inspect and operate a ringcache cluster",
		"ringcachectl talks gRPC to one ringcache node (--addr) to inspect the\n"+
			"cluster (members, ring, locate, stats, journal) and to read and write keys.\n"+
			"bench and simulate run "+PluginName+", a separate binary found next to\n"+
			"ringcachectl or on $PATH.")
	root.AddCommand(
		newMembersCommand(o),
		newRingCommand(o),
		newLocateCommand(o),
		newGetCommand(o),
		newSetCommand(o),
		newDelCommand(o),
		newStatsCommand(o),
		newJournalCommand(o),
		newFlushCommand(o),
		newTopCommand(o),
		newGossipKeysCommand(o),
		newPluginCommand("bench", BenchShort),
		newPluginCommand("simulate", SimulateShort),
		newCertsCommand(o),
	)
	return root
}

// newRoot returns a root command with the global flags and no commands.
func newRoot(short, long string) (*cobra.Command, *options) {
	o := &options{}
	root := &cobra.Command{
		Use:           "ringcachectl",
		Version:       buildinfo.Version(),
		Short:         short,
		Long:          long,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			o.stderr = cmd.ErrOrStderr()
			return o.validate()
		},
	}
	addr := DefaultAddr
	if env := os.Getenv(AddrEnv); env != "" {
		addr = env
	}
	f := root.PersistentFlags()
	f.StringVar(&o.addr, "addr", addr, "gRPC address of the node to ask (default from $"+AddrEnv+")")
	f.StringVarP(&o.output, "output", "o", outputTable, "output format: table or json")
	f.DurationVar(&o.timeout, "timeout", DefaultTimeout, "deadline of each RPC")
	f.StringVar(&o.tlsCA, "tls-ca", "", "CA that signs the nodes' certificates (PEM); dials over TLS")
	f.StringVar(&o.tlsCert, "tls-cert", "", "client certificate (PEM; ringcachectl certs client makes one) that identifies the caller")
	f.StringVar(&o.tlsKey, "tls-key", "", "key of --tls-cert (PEM)")
	f.StringVar(&o.token, "token", os.Getenv(TokenEnv), "bearer token that identifies the caller (default from $"+TokenEnv+")")
	return root, o
}

func (o *options) validate() error {
	switch o.output {
	case outputTable, outputJSON:
	default:
		return fmt.Errorf("unknown output format %q: use table or json", o.output)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	if o.addr == "" {
		return fmt.Errorf("--addr is empty")
	}
	return nil
}

// render writes v as JSON with -o json, otherwise calls table.
func (o *options) render(w io.Writer, v any, table func(io.Writer) error) error {
	if o.output == outputJSON {
		return writeJSON(w, v)
	}
	return table(w)
}
