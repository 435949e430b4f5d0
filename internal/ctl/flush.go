package ctl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// namespaceFlushJSON is the outcome of FlushNamespace on one node. Status
// is ok or failed (with Error).
type namespaceFlushJSON struct {
	Node             string `json:"node"`
	Addr             string `json:"addr"`
	Status           string `json:"status"`
	Epoch            uint32 `json:"epoch"`
	PrefixTombstones uint32 `json:"prefix_tombstones"`
	Folded           bool   `json:"folded"`
	StreamsReset     uint32 `json:"streams_reset"`
	Error            string `json:"error,omitempty"`
}

func newFlushCommand(o *options) *cobra.Command {
	var (
		prefix   string
		nodeOnly bool
	)
	cmd := &cobra.Command{
		Use:   "flush NAMESPACE",
		Short: "Empty a namespace (or its keys under --prefix) on every alive member",
		Long: "flush asks every alive member (or only --addr with --node-only) to empty\n" +
			"NAMESPACE in its memory, or with --prefix only the keys that start with P.\n" +
			"Each node does it in constant time: entries cached before the flush are\n" +
			"never served again (a read misses and, in a read-through namespace, loads\n" +
			"from the database), and their memory is reclaimed as they are replaced,\n" +
			"expire or are evicted. Writes pending in the write-behind journal are kept\n" +
			"and still read back. Each node then resets the near caches and hot caches\n" +
			"that watch the namespace. Needs the admin role.\n\n" +
			"Every key read after the flush goes to the database once: flushing a hot\n" +
			"namespace sends its whole working set there at once.\n\n" +
			"It prints per node the flush's epoch, the prefix flushes the node remembers\n" +
			"(at most 64; one more flushes every entry older than the oldest, marked\n" +
			"FOLDED) and the invalidation streams it reset. A node that joins later\n" +
			"starts empty. The command fails when any node failed, after printing the\n" +
			"others: run it again, a flush is idempotent.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns := args[0]
			results, err := askNodes(cmd.Context(), o, nodeOnly, func(ctx context.Context, n *node) (*ringcachev1.FlushNamespaceResponse, error) {
				resp, err := call(ctx, n, n.admin.FlushNamespace, &ringcachev1.FlushNamespaceRequest{Namespace: ns, Prefix: prefix})
				return resp, flushError(n.addr, ns, err)
			})
			if err != nil {
				return err
			}
			v := make([]namespaceFlushJSON, len(results))
			var failed []nodeResult[*ringcachev1.FlushNamespaceResponse]
			for i, r := range results {
				f := namespaceFlushJSON{Node: cmp.Or(r.name, r.resp.GetNode(), r.addr), Addr: r.addr, Status: flushOK}
				if r.err != nil {
					f.Status, f.Error = flushFailed, r.err.Error()
					failed = append(failed, r)
				} else {
					f.Epoch, f.PrefixTombstones = r.resp.GetEpoch(), r.resp.GetPrefixTombstones()
					f.Folded, f.StreamsReset = r.resp.GetFolded(), r.resp.GetStreamsReset()
				}
				v[i] = f
			}
			slices.SortStableFunc(v, func(a, b namespaceFlushJSON) int { return cmp.Compare(a.Node, b.Node) })
			if err := o.render(cmd.OutOrStdout(), v, func(w io.Writer) error { return printNamespaceFlush(w, v) }); err != nil {
				return err
			}
			if nodeOnly && len(failed) > 0 {
				return failed[0].err
			}
			return nodeErrors("flush", failed)
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "flush only the keys that start with `P`")
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "flush only the node at --addr")
	return cmd
}

func printNamespaceFlush(w io.Writer, v []namespaceFlushJSON) error {
	t := newTable(w, "NODE", "EPOCH", "PREFIXES", "STREAMS RESET", "RESULT")
	for _, f := range v {
		switch {
		case f.Status != flushOK:
			t.row(f.Node, "-", "-", "-", "FAILED")
		case f.Folded:
			t.row(f.Node, f.Epoch, f.PrefixTombstones, f.StreamsReset, "ok, FOLDED")
		default:
			t.row(f.Node, f.Epoch, f.PrefixTombstones, f.StreamsReset, "ok")
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if slices.ContainsFunc(v, func(f namespaceFlushJSON) bool { return f.Folded }) {
		_, err := fmt.Fprintln(w, "\n# FOLDED: the node remembered 64 prefix flushes of this namespace and\n"+
			"# flushed every entry cached before the oldest of them, whatever its key.")
		return err
	}
	return nil
}

// flushError explains the errors of FlushNamespace on the node at addr
// that are about the request or the node rather than the flush.
func flushError(addr, ns string, err error) error {
	switch {
	case err == nil:
		return nil
	case isCode(err, codes.NotFound):
		return &explainedError{err: err, msg: fmt.Sprintf("namespace %q is not configured on %s (%v)", ns, addr, err)}
	case isCode(err, codes.PermissionDenied), isCode(err, codes.Unauthenticated):
		return &explainedError{err: err, msg: fmt.Sprintf("flush needs the admin role on %s; pass an admin's --token (%v)", addr, err)}
	case isCode(err, codes.Unimplemented):
		return &explainedError{err: err, msg: fmt.Sprintf("node at %s does not serve FlushNamespace; is it an older ringcache? (%v)", addr, err)}
	}
	return err
}
