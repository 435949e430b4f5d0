package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/gossipkey"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// gossipKeysHelp says what the gossip-keys commands do and how they relate
// to the key file.
const gossipKeysHelp = "Gossip between nodes is encrypted with the keys of each node's\n" +
	"--gossip-key-file, the first being primary (the one it encrypts with). Keys\n" +
	"are shown by fingerprint, the first 8 bytes of their SHA-256; a key itself is\n" +
	"sent only by install and rotate, and only over TLS or to a loopback address.\n\n" +
	"After each change a node rewrites its --gossip-key-file with the keyring in\n" +
	"use, so a restart keeps it. Where the file is read-only (a Kubernetes Secret)\n" +
	"the command fails naming the nodes: update the file yourself before they\n" +
	"restart. `gossip-keys list` shows whether every node's file is in step."

func newGossipKeysCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "gossip-keys",
		Short: "List and rotate the gossip encryption keys of every alive member",
		Long: "gossip-keys (or gossip-keys list) asks every alive member for its gossip keys.\n" +
			"gossip-keys rotate --key-file NEW switches the cluster to a new key without\n" +
			"losing a member; install, use and remove are its three steps, one at a time.\n\n" +
			gossipKeysHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.listGossipKeys(cmd, nodeOnly) },
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "ask only the node at --addr")
	cmd.AddCommand(newGossipKeysListCommand(o), newGossipKeysRotateCommand(o),
		newGossipKeysInstallCommand(o), newGossipKeysUseCommand(o), newGossipKeysRemoveCommand(o))
	return cmd
}

func newGossipKeysListCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Same as gossip-keys: the gossip keys of every alive member",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.listGossipKeys(cmd, nodeOnly) },
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "ask only the node at --addr")
	return cmd
}

func newGossipKeysInstallCommand(o *options) *cobra.Command {
	var keyFile string
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "install --key-file NEW",
		Short: "Step 1: add a key every alive member accepts; they go on encrypting with their primary",
		Long:  "install adds the key of --key-file to every alive member's keyring as a\nsecondary key. Installing a key twice is harmless.\n\n" + gossipKeysHelp,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readOneKey(keyFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			return o.keyStep(cmd, nodeOnly, "install", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
				return o.installKey(ctx, n, key)
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the new key (one base64 line, as --gossip-key-file; e.g. head -c 32 /dev/urandom | base64); - reads stdin")
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "change only the node at --addr")
	return cmd
}

func newGossipKeysUseCommand(o *options) *cobra.Command {
	var keyFile string
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "use (ID | --key-file KEY)",
		Short: "Step 2: make an installed key the primary of every alive member",
		Long: "use makes the key with fingerprint ID (or the key of --key-file, of which only\n" +
			"the fingerprint is sent) the primary of every alive member. Run it only once\n" +
			"every member holds the key (install), or members that lack it lose contact.\n\n" + gossipKeysHelp,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := keyID(args, keyFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			return o.keyStep(cmd, nodeOnly, "use", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
				resp, err := call(ctx, n, n.admin.UseGossipKey, &ringcachev1.UseGossipKeyRequest{Id: id})
				return resp.GetKeyring(), err
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the key, instead of its ID")
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "change only the node at --addr")
	return cmd
}

func newGossipKeysRemoveCommand(o *options) *cobra.Command {
	var nodeOnly bool
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Step 3: drop a key that is no member's primary from every alive member",
		Long: "remove drops the key with fingerprint ID from every alive member. A member\n" +
			"refuses to drop its primary key; a member without the key is left as it is.\n\n" + gossipKeysHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.keyStep(cmd, nodeOnly, "remove", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
				resp, err := call(ctx, n, n.admin.RemoveGossipKey, &ringcachev1.RemoveGossipKeyRequest{Id: args[0]})
				return resp.GetKeyring(), err
			})
		},
	}
	cmd.Flags().BoolVar(&nodeOnly, "node-only", false, "change only the node at --addr")
	return cmd
}

// keyringJSON is one member's keyring: GossipKeyring with its proto field
// names, plus the address that was asked.
type keyringJSON struct {
	Node         string    `json:"node"`
	Addr         string    `json:"addr"`
	Encrypted    bool      `json:"encrypted"`
	Keys         []keyJSON `json:"keys"`
	KeyFile      string    `json:"key_file,omitempty"`
	KeyFileError string    `json:"key_file_error,omitempty"`
}

type keyJSON struct {
	ID      string `json:"id"`
	Primary bool   `json:"primary"`
}

func toKeyringJSON(name, addr string, kr *ringcachev1.GossipKeyring) keyringJSON {
	v := keyringJSON{Node: cmp.Or(kr.GetNode(), name, addr), Addr: addr, Encrypted: kr.GetEncrypted(),
		Keys: []keyJSON{}, KeyFile: kr.GetKeyFile(), KeyFileError: kr.GetKeyFileError()}
	for _, k := range kr.GetKeys() {
		v.Keys = append(v.Keys, keyJSON{ID: k.GetId(), Primary: k.GetPrimary()})
	}
	return v
}

func (k keyringJSON) primary() string {
	for _, x := range k.Keys {
		if x.Primary {
			return x.ID
		}
	}
	return ""
}

func (k keyringJSON) has(id string) bool {
	return slices.ContainsFunc(k.Keys, func(x keyJSON) bool { return x.ID == id })
}

func (o *options) listGossipKeys(cmd *cobra.Command, nodeOnly bool) error {
	return o.keyStep(cmd, nodeOnly, "list", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
		resp, err := call(ctx, n, n.admin.GossipKeys, &ringcachev1.GossipKeysRequest{})
		return resp.GetKeyring(), err
	})
}

// keyStep runs rpc on every alive member (or the node at --addr), prints
// the keyrings that came back, and fails naming the members that failed
// and those whose key file is not in step.
func (o *options) keyStep(cmd *cobra.Command, nodeOnly bool, what string, rpc func(context.Context, *node) (*ringcachev1.GossipKeyring, error)) error {
	results, err := askNodes(cmd.Context(), o, nodeOnly, rpc)
	if err != nil {
		return err
	}
	var rings []keyringJSON
	for _, r := range results {
		if r.err == nil {
			rings = append(rings, toKeyringJSON(r.name, r.addr, r.resp))
		}
	}
	errs := []error{nodeErrors(what, results)}
	if len(rings) > 0 {
		if err := o.printKeyrings(cmd.OutOrStdout(), rings); err != nil {
			return err
		}
		errs = append(errs, keyFileErrors(rings))
	}
	return errors.Join(errs...)
}

func (o *options) printKeyrings(w io.Writer, rings []keyringJSON) error {
	slices.SortStableFunc(rings, func(a, b keyringJSON) int { return cmp.Compare(a.Node, b.Node) })
	return o.render(w, rings, func(w io.Writer) error {
		t := newTable(w, "NODE", "PRIMARY", "OTHER KEYS", "KEY FILE")
		for _, k := range rings {
			if !k.Encrypted {
				t.row(k.Node, "(gossip not encrypted)", "-", "-")
				continue
			}
			var others []string
			for _, x := range k.Keys {
				if !x.Primary {
					others = append(others, x.ID)
				}
			}
			file := cmp.Or(k.KeyFile, "(none)")
			if k.KeyFileError != "" {
				file += " (NOT IN STEP)"
			}
			t.row(k.Node, k.primary(), cmp.Or(strings.Join(others, ","), "-"), file)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if !sameKeyrings(rings) {
			_, err := fmt.Fprintln(w, "\n# the members' keyrings differ: a rotation is half done; finish it with gossip-keys rotate")
			return err
		}
		return nil
	})
}

// sameKeyrings reports whether every keyring holds the same keys with the
// same primary.
func sameKeyrings(rings []keyringJSON) bool {
	norm := func(k keyringJSON) string {
		var ids []string
		for _, x := range k.Keys {
			ids = append(ids, x.ID)
		}
		slices.Sort(ids)
		return k.primary() + "|" + strings.Join(ids, ",")
	}
	for _, k := range rings[1:] {
		if norm(k) != norm(rings[0]) {
			return false
		}
	}
	return true
}

// keyFileErrors names the members whose key file does not hold their
// keyring, and what to do.
func keyFileErrors(rings []keyringJSON) error {
	var errs []error
	for _, k := range rings {
		if k.KeyFileError != "" {
			errs = append(errs, fmt.Errorf("%s: %s", k.Node, k.KeyFileError))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("the key file of %d members does not hold the keyring in use; a member restarted "+
		"from it may be refused by the cluster: make each file hold the keys listed above, primary first:\n%w",
		len(errs), errors.Join(errs...))
}

// installKey sends key to n, refusing to send it in the clear to another
// host: whoever watched the wire would hold the cluster's gossip key.
func (o *options) installKey(ctx context.Context, n *node, key []byte) (*ringcachev1.GossipKeyring, error) {
	if !o.tls() && !loopback(n.addr) {
		return nil, fmt.Errorf("refusing to send a gossip key in the clear to %s: dial over TLS (--tls-ca), or run ringcachectl on the node's host against its loopback address", n.addr)
	}
	resp, err := call(ctx, n, n.admin.InstallGossipKey, &ringcachev1.InstallGossipKeyRequest{Key: key})
	return resp.GetKeyring(), err
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// readOneKey reads a key file that must hold exactly one key; "-" reads
// stdin (kubectl exec -i … --key-file - < new.key).
func readOneKey(path string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	switch path {
	case "":
		return nil, errors.New("--key-file is required: a file holding the new key (head -c 32 /dev/urandom | base64 > new.key)")
	case "-":
		data, err = io.ReadAll(stdin)
	default:
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	keys, err := gossipkey.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("--key-file %s: %w", path, err)
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("--key-file %s holds %d keys; give a file holding the new key alone", path, len(keys))
	}
	return keys[0], nil
}

// keyID returns the fingerprint given as the argument or that of the key
// in keyFile; exactly one must be given.
func keyID(args []string, keyFile string, stdin io.Reader) (string, error) {
	switch {
	case len(args) == 1 && keyFile == "":
		return args[0], nil
	case len(args) == 0 && keyFile != "":
		key, err := readOneKey(keyFile, stdin)
		if err != nil {
			return "", err
		}
		return gossipkey.ID(key), nil
	}
	return "", errors.New("give the key's ID (as gossip-keys list shows it) or --key-file, not both")
}
