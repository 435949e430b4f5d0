package ctl

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// This file is what ringcachectl-bench (package benchctl) builds on, so that
// its commands take the same global flags, connect, render and fail the way
// ringcachectl's own commands do.

// Globals are the global flags of ringcachectl: --addr, -o/--output and
// --timeout.
type Globals struct{ o *options }

// NewRoot returns a root command named ringcachectl with the global flags
// and their validation, and no commands. NewRootCommand adds the operator
// commands to one; ringcachectl-bench adds bench and simulate to another, so
// both parse the same command line.
func NewRoot(short, long string) (*cobra.Command, *Globals) {
	root, o := newRoot(short, long)
	return root, &Globals{o: o}
}

// Addr is --addr: the node to ask.
func (g *Globals) Addr() string { return g.o.addr }

// Security returns the TLS files (--tls-ca, --tls-cert, --tls-key) and the
// bearer token (--token, $RINGCACHE_TOKEN) to dial nodes with.
func (g *Globals) Security() (ca, cert, key, token string) {
	return g.o.tlsCA, g.o.tlsCert, g.o.tlsKey, g.o.token
}

// Render writes v as JSON with -o json, otherwise calls table.
func (g *Globals) Render(w io.Writer, v any, table func(io.Writer) error) error {
	return g.o.render(w, v, table)
}

// Stats returns the stats of every alive member, sorted by node name, as
// `ringcachectl stats` collects them; the error joins the members that did
// not answer.
func (g *Globals) Stats(ctx context.Context) ([]*ringcachev1.StatsResponse, error) {
	return g.o.collectStats(ctx, false)
}

// ConnectMembers connects to every alive member of the cluster of --addr.
// The caller closes the nodes.
func (g *Globals) ConnectMembers(ctx context.Context) ([]*Node, error) {
	seed, err := g.o.connect(g.o.addr)
	if err != nil {
		return nil, err
	}
	defer seed.close()
	alive, err := aliveMembers(ctx, seed)
	if err != nil {
		return nil, err
	}
	nodes := make([]*Node, 0, len(alive))
	for _, m := range alive {
		n, err := g.o.connect(m.GetGrpcAddr())
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			return nil, err
		}
		nodes = append(nodes, &Node{n: n})
	}
	return nodes, nil
}

// Node is a connection to one node. Each call has the deadline --timeout
// and fails with an *RPCError.
type Node struct{ n *node }

// Get calls Cache.Get on the node.
func (n *Node) Get(ctx context.Context, req *ringcachev1.GetRequest) (*ringcachev1.GetResponse, error) {
	return call(ctx, n.n, n.n.cache.Get, req)
}

// Set calls Cache.Set on the node.
func (n *Node) Set(ctx context.Context, req *ringcachev1.SetRequest) (*ringcachev1.SetResponse, error) {
	return call(ctx, n.n, n.n.cache.Set, req)
}

// Close closes the connection.
func (n *Node) Close() { n.n.close() }

// Table is a tab-aligned text table, as every command prints.
type Table struct{ t *table }

// NewTable starts a table with its header row.
func NewTable(w io.Writer, header ...string) *Table { return &Table{t: newTable(w, header...)} }

// Row adds a row; each cell is printed with fmt.Sprint.
func (t *Table) Row(cells ...any) { t.t.row(cells...) }

// Flush writes the aligned table.
func (t *Table) Flush() error { return t.t.flush() }

// Percent formats n/d as a percentage with one decimal, or "-" when d is 0.
func Percent(n, d uint64) string { return percent(n, d) }

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool { return isTerminal(w) }
