package ctl

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

type getJSON struct {
	Found bool `json:"found"`
	jsonValue
}

type getManyJSON struct {
	Results []keyResultJSON `json:"results"`
}

type keyResultJSON struct {
	Key   string `json:"key"`
	Found bool   `json:"found"`
	jsonValue
	Error string `json:"error,omitempty"`
}

func newGetCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAMESPACE KEY [KEY...]",
		Short: "Read keys; one key prints its raw value, several print a table",
		Long: "get prints the value of one key raw, followed by a newline, or\n" +
			"\"(not found)\" on stderr (exit status 0). With several keys it asks\n" +
			"GetMany and prints a KEY/FOUND/VALUE table; it fails when any key failed.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			if len(args) == 2 {
				return o.getOne(cmd, n, args[0], args[1])
			}
			return o.getMany(cmd, n, args[0], args[1:])
		},
	}
}

func (o *options) getOne(cmd *cobra.Command, n *node, namespace, key string) error {
	resp, err := call(cmd.Context(), n, n.cache.Get, &ringcachev1.GetRequest{Namespace: namespace, Key: key})
	if err != nil {
		return err
	}
	v := getJSON{Found: resp.GetFound(), jsonValue: newJSONValue(resp.GetFound(), resp.GetValue())}
	return o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
		if !resp.GetFound() {
			_, err := fmt.Fprintln(cmd.ErrOrStderr(), "(not found)")
			return err
		}
		if _, err := w.Write(resp.GetValue()); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\n")
		return err
	})
}

func (o *options) getMany(cmd *cobra.Command, n *node, namespace string, keys []string) error {
	resp, err := call(cmd.Context(), n, n.cache.GetMany, &ringcachev1.GetManyRequest{Namespace: namespace, Keys: keys})
	if err != nil {
		return err
	}
	v := getManyJSON{Results: []keyResultJSON{}}
	failed := 0
	for _, r := range resp.GetResults() {
		k := keyResultJSON{Key: r.GetKey(), Found: r.GetFound(), jsonValue: newJSONValue(r.GetFound(), r.GetValue())}
		if r.GetErrorCode() != 0 {
			failed++
			k.Error = codeName(codes.Code(r.GetErrorCode())) + ": " + r.GetErrorMessage()
		}
		v.Results = append(v.Results, k)
	}
	err = o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
		t := newTable(w, "KEY", "FOUND", "VALUE")
		for i, r := range resp.GetResults() {
			switch {
			case v.Results[i].Error != "":
				t.row(r.GetKey(), "error", v.Results[i].Error)
			case r.GetFound():
				t.row(r.GetKey(), "yes", cell(r.GetValue()))
			default:
				t.row(r.GetKey(), "no", "")
			}
		}
		return t.flush()
	})
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d of %d keys failed", failed, len(v.Results))
	}
	return err
}

func newSetCommand(o *options) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "set NAMESPACE KEY VALUE",
		Short: "Write a key (VALUE - reads the value from stdin)",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := []byte(args[2])
			if args[2] == "-" {
				var err error
				if value, err = io.ReadAll(cmd.InOrStdin()); err != nil {
					return fmt.Errorf("read value from stdin: %w", err)
				}
			}
			req := &ringcachev1.SetRequest{Namespace: args[0], Key: args[1], Value: value}
			if ttl < 0 {
				return fmt.Errorf("--ttl must not be negative, got %s", ttl)
			}
			if ttl > 0 {
				req.Ttl = durationpb.New(ttl)
			}
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			if _, err := call(cmd.Context(), n, n.cache.Set, req); err != nil {
				return err
			}
			return o.printOK(cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "time to live of this entry (default: the namespace ttl)")
	return cmd
}

func newDelCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "del NAMESPACE KEY",
		Aliases: []string{"delete"},
		Short:   "Delete a key",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			if _, err := call(cmd.Context(), n, n.cache.Delete,
				&ringcachev1.DeleteRequest{Namespace: args[0], Key: args[1]}); err != nil {
				return err
			}
			return o.printOK(cmd.OutOrStdout())
		},
	}
}

// printOK acknowledges a write: OK, or {"ok": true} with -o json.
func (o *options) printOK(w io.Writer) error {
	return o.render(w, map[string]bool{"ok": true}, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, "OK")
		return err
	})
}
