package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// perNodeHelp explains where dead letters live; every dead-letter command
// repeats it.
const perNodeHelp = "Dead letters are writes the database rejected for good. They are kept on the\n" +
	"disk of the node whose journal held the write, so this command acts on the\n" +
	"node at --addr only. `ringcachectl journal` shows the DEAD count of every\n" +
	"node; point --addr at a node that has some."

// lastErrorWidth is how much of a dead letter's last error the table shows.
const lastErrorWidth = 80

func newJournalCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "journal",
		Short: "Show the write-behind journal of every alive member (status, flush, dead letters)",
		Long: "journal (or journal status) lists the members known to --addr and asks every\n" +
			"alive one for its write-behind journal: the backlog not yet in the database,\n" +
			"the flusher's counters and the dead letters. OWNED is the node's own pending\n" +
			"writes (taken-over ones included), REPLICA the copies it holds of other nodes'\n" +
			"(write_behind.replicas), TAKEN OVER the writes it adopted from departed nodes\n" +
			"since it started. UNDER-REPL counts writes acknowledged with fewer copies than\n" +
			"asked (write_behind.min_replicas); SYNC is no while the node re-replicates its\n" +
			"pending writes after a membership change. LIMIT is how full the journal is,\n" +
			"the larger of pending/max pending and bytes/max bytes; at 100% writes fail\n" +
			"with RESOURCE_EXHAUSTED. Nodes that answer are printed even when others fail;\n" +
			"the command then fails naming the nodes it could not ask.\n\n" +
			"Dead letters are per node: journal dead, retry and drop act on --addr only.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.journalStatus(cmd, nodeOnly) },
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "ask only the node at --addr")
	cmd.AddCommand(
		newJournalStatusCommand(o),
		newJournalFlushCommand(o),
		newJournalDeadCommand(o),
		newDeadLetterActionCommand(o, "retry", "Queue a dead letter of the node at --addr for flushing again",
			func(ctx context.Context, n *node, ns, key string) error {
				_, err := call(ctx, n, n.admin.RetryDeadLetter, &ringcachev1.RetryDeadLetterRequest{Namespace: ns, Key: key})
				return err
			}),
		newDeadLetterActionCommand(o, "drop", "Discard a dead letter of the node at --addr",
			func(ctx context.Context, n *node, ns, key string) error {
				_, err := call(ctx, n, n.admin.DropDeadLetter, &ringcachev1.DropDeadLetterRequest{Namespace: ns, Key: key})
				return err
			}),
	)
	return cmd
}

func newJournalStatusCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Same as journal: the write-behind journal of every alive member",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.journalStatus(cmd, nodeOnly) },
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "ask only the node at --addr")
	return cmd
}

// journalJSON mirrors JournalResponse with its proto field names, plus the
// address that was asked.
type journalJSON struct {
	Node               string `json:"node"`
	Addr               string `json:"addr"`
	Enabled            bool   `json:"enabled"`
	Pending            uint64 `json:"pending"`
	PendingBytes       uint64 `json:"pending_bytes"`
	OldestPendingAgeMs int64  `json:"oldest_pending_age_ms"`
	DeadLetters        uint64 `json:"dead_letters"`
	Appends            uint64 `json:"appends"`
	Coalesced          uint64 `json:"coalesced"`
	Flushed            uint64 `json:"flushed"`
	FlushFailures      uint64 `json:"flush_failures"`
	MaxPending         uint64 `json:"max_pending"`
	MaxBytes           uint64 `json:"max_bytes"`
	// Replication: copies held for other nodes, what moved, and the state.
	ReplicaPending      uint64              `json:"replica_pending"`
	ReplicaBytes        uint64              `json:"replica_bytes"`
	TakenOver           uint64              `json:"taken_over"`
	Takeovers           uint64              `json:"takeovers"`
	HandedOver          uint64              `json:"handed_over"`
	UnderReplicated     uint64              `json:"under_replicated"`
	ReplicationInSync   bool                `json:"replication_in_sync"`
	Replicated          uint64              `json:"replicated"`
	ReplicationFailures uint64              `json:"replication_failures"`
	ReplicationP50Us    int64               `json:"replication_p50_us"`
	ReplicationP99Us    int64               `json:"replication_p99_us"`
	JournalID           string              `json:"journal_id"`
	ReplicaOrigins      []replicaOriginJSON `json:"replica_origins"`
}

// replicaOriginJSON mirrors ReplicaOrigin.
type replicaOriginJSON struct {
	Node      string `json:"node"`
	JournalID string `json:"journal_id"`
	Records   uint64 `json:"records"`
	Departed  bool   `json:"departed"`
}

func (o *options) journalStatus(cmd *cobra.Command, nodeOnly bool) error {
	results, err := askNodes(cmd.Context(), o, nodeOnly, func(ctx context.Context, n *node) (*ringcachev1.JournalResponse, error) {
		resp, err := call(ctx, n, n.admin.Journal, &ringcachev1.JournalRequest{})
		return resp, journalError(n.addr, err)
	})
	if err != nil {
		return err
	}
	if nodeOnly && results[0].err != nil {
		return results[0].err
	}
	v := []journalJSON{}
	for _, r := range results {
		if r.err != nil {
			continue
		}
		j := r.resp
		v = append(v, journalJSON{
			Node: cmp.Or(j.GetNode(), r.name, r.addr), Addr: r.addr, Enabled: j.GetEnabled(),
			Pending: j.GetPending(), PendingBytes: j.GetPendingBytes(),
			OldestPendingAgeMs: j.GetOldestPendingAgeMs(), DeadLetters: j.GetDeadLetters(),
			Appends: j.GetAppends(), Coalesced: j.GetCoalesced(),
			Flushed: j.GetFlushed(), FlushFailures: j.GetFlushFailures(),
			MaxPending: j.GetMaxPending(), MaxBytes: j.GetMaxBytes(),
			ReplicaPending: j.GetReplicaPending(), ReplicaBytes: j.GetReplicaBytes(),
			TakenOver: j.GetTakenOver(), Takeovers: j.GetTakeovers(), HandedOver: j.GetHandedOver(),
			UnderReplicated: j.GetUnderReplicated(), ReplicationInSync: j.GetReplicationInSync(),
			Replicated: j.GetReplicated(), ReplicationFailures: j.GetReplicationFailures(),
			ReplicationP50Us: j.GetReplicationP50Us(), ReplicationP99Us: j.GetReplicationP99Us(),
			JournalID: j.GetJournalId(), ReplicaOrigins: []replicaOriginJSON{},
		})
		for _, o := range j.GetReplicaOrigins() {
			v[len(v)-1].ReplicaOrigins = append(v[len(v)-1].ReplicaOrigins, replicaOriginJSON{
				Node: o.GetNode(), JournalID: o.GetJournalId(), Records: o.GetRecords(), Departed: o.GetDeparted()})
		}
	}
	errs := nodeErrors("journal", results)
	if len(v) == 0 {
		return errs
	}
	slices.SortStableFunc(v, func(a, b journalJSON) int { return cmp.Compare(a.Node, b.Node) })
	if err := o.render(cmd.OutOrStdout(), v, func(w io.Writer) error { return printJournal(w, v) }); err != nil {
		return err
	}
	return errs
}

func printJournal(w io.Writer, v []journalJSON) error {
	t := newTable(w, "NODE", "OWNED", "REPLICA", "TAKEN OVER", "BYTES", "OLDEST", "DEAD", "FLUSHED", "FAILURES", "UNDER-REPL", "SYNC", "LIMIT")
	for _, j := range v {
		if !j.Enabled {
			t.row(j.Node, "(no write-behind)")
			continue
		}
		sync := "yes"
		if !j.ReplicationInSync {
			sync = "no"
		}
		t.row(j.Node, j.Pending, j.ReplicaPending, j.TakenOver, j.PendingBytes, formatAge(j.OldestPendingAgeMs), j.DeadLetters,
			j.Flushed, j.FlushFailures, j.UnderReplicated, sync, journalFill(j))
	}
	if err := t.flush(); err != nil {
		return err
	}
	sep := "\n"
	for _, j := range v {
		for _, o := range j.ReplicaOrigins {
			if o.Departed {
				if _, err := fmt.Fprintf(w, "%s# %s holds %d copies of the writes of departed %s; it is taking them over\n",
					sep, j.Node, o.Records, o.Node); err != nil {
					return err
				}
				sep = ""
			}
		}
	}
	for _, j := range v {
		if j.Enabled && j.DeadLetters > 0 {
			if _, err := fmt.Fprintf(w, "%s# %s holds %d dead %s: ringcachectl --addr %s journal dead\n",
				sep, j.Node, j.DeadLetters, map[bool]string{true: "letter", false: "letters"}[j.DeadLetters == 1], j.Addr); err != nil {
				return err
			}
			sep = ""
		}
	}
	return nil
}

// formatAge renders a millisecond age for humans: 350ms, 1.2s, 3m4s, 2h5m,
// or "-" for none.
func formatAge(ms int64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 1000:
		return strconv.FormatInt(ms, 10) + "ms"
	case ms < 60_000:
		return fmt.Sprintf("%d.%ds", ms/1000, ms%1000/100)
	}
	d := time.Duration(ms) * time.Millisecond
	if d < time.Hour {
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
}

// journalFill is how full the journal is against the tighter of its two
// bounds, as "12.5%", or "-" when it is unbounded.
func journalFill(j journalJSON) string {
	fill, bounded := 0.0, false
	if j.MaxPending > 0 {
		fill, bounded = max(fill, float64(j.Pending)/float64(j.MaxPending)), true
	}
	if j.MaxBytes > 0 {
		fill, bounded = max(fill, float64(j.PendingBytes)/float64(j.MaxBytes)), true
	}
	if !bounded {
		return "-"
	}
	return strconv.FormatFloat(100*fill, 'f', 1, 64) + "%"
}

// flushJSON is the outcome of FlushJournal on one node. Status is ok,
// no_write_behind or failed (with Error).
type flushJSON struct {
	Node    string `json:"node"`
	Addr    string `json:"addr"`
	Status  string `json:"status"`
	Flushed uint64 `json:"flushed"`
	Pending uint64 `json:"pending"`
	Error   string `json:"error,omitempty"`
}

const (
	flushOK            = "ok"
	flushNoWriteBehind = "no_write_behind"
	flushFailed        = "failed"
)

// flushed is the answer of FlushJournal and, with --node-only, the node's
// name.
type flushed struct {
	resp *ringcachev1.FlushJournalResponse
	self string
}

func newJournalFlushCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "flush",
		Short: "Write every pending write-behind record to the database now, on every alive member",
		Long: "flush asks every alive member (or only --addr with --node-only) to write its\n" +
			"whole write-behind backlog to the database and waits for it; a large backlog\n" +
			"may need a longer --timeout. It prints per node how many records were\n" +
			"flushed and how many are still pending (writes that arrived meanwhile).\n" +
			"Nodes without write-behind are skipped. The command fails when any node\n" +
			"failed, after printing the others.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			results, err := askNodes(cmd.Context(), o, nodeOnly, func(ctx context.Context, n *node) (flushed, error) {
				resp, err := call(ctx, n, n.admin.FlushJournal, &ringcachev1.FlushJournalRequest{})
				if err != nil && !isCode(err, codes.FailedPrecondition) {
					return flushed{}, journalError(n.addr, err)
				}
				f := flushed{resp: resp}
				if nodeOnly { // only the node knows its name; a failure leaves the address
					if m, merr := call(ctx, n, n.admin.Members, &ringcachev1.MembersRequest{}); merr == nil {
						f.self = m.GetSelf()
					}
				}
				return f, journalError(n.addr, err)
			})
			if err != nil {
				return err
			}
			v := make([]flushJSON, len(results))
			var failed []nodeResult[flushed]
			for i, r := range results {
				f := flushJSON{Node: cmp.Or(r.name, r.resp.self, r.addr), Addr: r.addr, Status: flushOK}
				switch {
				case r.err == nil:
					f.Flushed, f.Pending = r.resp.resp.GetFlushed(), r.resp.resp.GetPending()
				case isCode(r.err, codes.FailedPrecondition):
					f.Status = flushNoWriteBehind
				default:
					f.Status, f.Error = flushFailed, r.err.Error()
					failed = append(failed, r)
				}
				v[i] = f
			}
			slices.SortStableFunc(v, func(a, b flushJSON) int { return cmp.Compare(a.Node, b.Node) })
			if err := o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
				t := newTable(w, "NODE", "FLUSHED", "PENDING", "RESULT")
				for _, f := range v {
					switch f.Status {
					case flushOK:
						t.row(f.Node, f.Flushed, f.Pending, "ok")
					case flushNoWriteBehind:
						t.row(f.Node, "-", "-", "(no write-behind)")
					default:
						t.row(f.Node, "-", "-", "FAILED")
					}
				}
				return t.flush()
			}); err != nil {
				return err
			}
			if len(failed) > 0 {
				return nodeErrors("flush", failed)
			}
			if !slices.ContainsFunc(v, func(f flushJSON) bool { return f.Status == flushOK }) {
				if nodeOnly {
					return results[0].err
				}
				return errors.New("no asked node has a write-behind journal: no namespace uses write-behind")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "flush only the node at --addr")
	return cmd
}

// deadLetterJSON mirrors DeadLetter; Kind is set or delete.
type deadLetterJSON struct {
	Namespace  string `json:"namespace"`
	Key        string `json:"key"`
	Kind       string `json:"kind"`
	Version    uint64 `json:"version"`
	Attempts   uint32 `json:"attempts"`
	ValueBytes uint64 `json:"value_bytes"`
	LastError  string `json:"last_error"`
}

func newJournalDeadCommand(o *options) *cobra.Command {
	var limit uint32
	cmd := &cobra.Command{
		Use:   "dead",
		Short: "List the dead letters of the node at --addr (dead letters are per node)",
		Long: "dead lists the writes the database rejected for good, by namespace and\n" +
			"key, with the error of their last attempt (cut to " + strconv.Itoa(lastErrorWidth) + " characters in the\n" +
			"table, whole with -o json). Fix the cause, then `journal retry` or `journal drop`.\n\n" + perNodeHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			resp, err := call(cmd.Context(), n, n.admin.DeadLetters, &ringcachev1.DeadLettersRequest{Limit: limit})
			if err != nil {
				return journalError(n.addr, err)
			}
			v := []deadLetterJSON{}
			for _, d := range resp.GetDeadLetters() {
				kind := "set"
				if d.GetDelete() {
					kind = "delete"
				}
				v = append(v, deadLetterJSON{
					Namespace: d.GetNamespace(), Key: d.GetKey(), Kind: kind, Version: d.GetVersion(),
					Attempts: d.GetAttempts(), ValueBytes: d.GetValueBytes(), LastError: d.GetLastError(),
				})
			}
			stderr := cmd.ErrOrStderr()
			if limit == 0 {
				limit = 100 // the server's default
			}
			if uint64(len(v)) >= uint64(limit) {
				fmt.Fprintf(stderr, "(showing the first %d dead letters of %s; raise --limit to see more)\n", len(v), o.addr)
			}
			return o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
				if len(v) == 0 {
					_, err := fmt.Fprintf(stderr, "(no dead letters on %s)\n", o.addr)
					return err
				}
				t := newTable(w, "NAMESPACE", "KEY", "KIND", "ATTEMPTS", "BYTES", "LAST ERROR")
				for _, d := range v {
					t.row(cell([]byte(d.Namespace)), cell([]byte(d.Key)), d.Kind, d.Attempts, d.ValueBytes,
						oneLine(d.LastError, lastErrorWidth))
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().Uint32Var(&limit, "limit", 100, "list at most this many dead letters (0: the server's default, 100)")
	return cmd
}

func newDeadLetterActionCommand(o *options, verb, short string, do func(context.Context, *node, string, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NAMESPACE KEY",
		Short: short,
		Long:  verb + " acts on the dead letter of NAMESPACE/KEY and prints OK.\n\n" + perNodeHelp,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			if err := do(cmd.Context(), n, args[0], args[1]); err != nil {
				if isCode(err, codes.NotFound) {
					return &explainedError{err: err, msg: fmt.Sprintf(
						"no dead letter for %s/%s on %s (dead letters are per node: `ringcachectl journal` shows which nodes hold some)",
						args[0], args[1], n.addr)}
				}
				return journalError(n.addr, err)
			}
			return o.printOK(cmd.OutOrStdout())
		},
	}
}

// journalError explains the errors of journal RPCs on the node at addr that
// are about the node rather than the request.
func journalError(addr string, err error) error {
	switch {
	case err == nil:
		return nil
	case isCode(err, codes.FailedPrecondition):
		return &explainedError{err: err, msg: fmt.Sprintf(
			"no write-behind journal on %s: none of its namespaces uses write-behind (%v)", addr, err)}
	case isCode(err, codes.Unimplemented):
		return &explainedError{err: err, msg: fmt.Sprintf(
			"node at %s does not serve the journal RPCs; is it an older ringcache? (%v)", addr, err)}
	}
	return err
}

// isCode reports whether err is a reachable RPCError with code c.
func isCode(err error, c codes.Code) bool {
	var rpcErr *RPCError
	return errors.As(err, &rpcErr) && rpcErr.Code == c
}

// oneLine puts s on one line, non-printable runes and whitespace runs
// replaced by one space, and cuts it to width runes ending with "…".
func oneLine(s string, width int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	return string([]rune(s)[:width-1]) + "…"
}
