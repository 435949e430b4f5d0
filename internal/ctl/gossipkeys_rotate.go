package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/gossipkey"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func newGossipKeysRotateCommand(o *options) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "rotate --key-file NEW",
		Short: "Switch every alive member to a new gossip key, without losing one",
		Long: "rotate runs the three steps of a key rotation, each on every alive member\n" +
			"before the next, checking that every member's keyring shows it:\n\n" +
			"  1. install the new key: every member accepts it, and goes on encrypting\n" +
			"     with its primary;\n" +
			"  2. use it: every member encrypts with it;\n" +
			"  3. remove every other key: the new key is every member's only key.\n\n" +
			"It stops at the first step that fails on a member, or when members come or\n" +
			"go, saying where the cluster stands; running it again resumes (done steps\n" +
			"change nothing). Members that are not alive get nothing: give them the new\n" +
			"key file before they start again. Progress goes to stderr, the keyrings at\n" +
			"the end to stdout.\n\n" + gossipKeysHelp,
		Example: "  head -c 32 /dev/urandom | base64 > new.key\n" +
			"  ringcachectl --tls-ca ca.crt --tls-cert client.ops.crt --tls-key client.ops.key gossip-keys rotate --key-file new.key",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readOneKey(keyFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			return o.rotateGossipKey(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), key)
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the new key (one base64 line, as --gossip-key-file; e.g. head -c 32 /dev/urandom | base64); - reads stdin")
	return cmd
}

// member is a connection to one alive member for the whole rotation.
type member struct {
	name string
	n    *node
}

// rotation is one run of gossip-keys rotate.
type rotation struct {
	o       *options
	seed    *node
	members []member
	dead    []string // members not alive when it started
	newID   string
	log     io.Writer
}

func (o *options) rotateGossipKey(ctx context.Context, stdout, stderr io.Writer, key []byte) error {
	seed, err := o.connect(o.addr)
	if err != nil {
		return err
	}
	defer seed.close()
	r := &rotation{o: o, seed: seed, newID: gossipkey.ID(key), log: stderr}
	all, err := call(ctx, seed, seed.admin.Members, &ringcachev1.MembersRequest{})
	if err != nil {
		return err
	}
	for _, m := range all.GetMembers() {
		if m.GetState() != ringcachev1.MemberState_MEMBER_STATE_ALIVE {
			r.dead = append(r.dead, m.GetName())
			continue
		}
		n, err := o.connect(m.GetGrpcAddr())
		if err != nil {
			return err
		}
		defer n.close()
		r.members = append(r.members, member{name: m.GetName(), n: n})
	}
	if len(r.members) == 0 {
		return fmt.Errorf("node at %s reports no alive members", seed.addr)
	}
	rings, err := r.run(ctx, key)
	if err != nil {
		return err
	}
	if err := o.printKeyrings(stdout, rings); err != nil {
		return err
	}
	var errs []error
	if len(r.dead) > 0 {
		errs = append(errs, fmt.Errorf("members %s were not alive and still hold the old keys: make their --gossip-key-file hold the new key alone before they start again, or the cluster refuses them",
			strings.Join(r.dead, ", ")))
	}
	return errors.Join(append(errs, keyFileErrors(rings))...)
}

// run does the three steps and returns the keyrings after the last.
func (r *rotation) run(ctx context.Context, key []byte) ([]keyringJSON, error) {
	names := make([]string, len(r.members))
	for i, m := range r.members {
		names[i] = m.name
	}
	fmt.Fprintf(r.log, "rotating the gossip keys of %d alive members (%s) to key %s\n", len(names), strings.Join(names, ", "), r.newID)
	if len(r.dead) > 0 {
		fmt.Fprintf(r.log, "not alive, left as they are: %s\n", strings.Join(r.dead, ", "))
	}

	rings, err := r.step(ctx, "list", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
		resp, err := call(ctx, n, n.admin.GossipKeys, &ringcachev1.GossipKeysRequest{})
		return resp.GetKeyring(), err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("before step 1: %w; nothing was changed", err)
	}
	for _, k := range rings {
		if !k.Encrypted {
			return nil, fmt.Errorf("%s's gossip is not encrypted (started without --gossip-key-file): encryption is turned on by restarting every node with a key, not by a rotation; nothing was changed", k.Node)
		}
	}

	rings, err = r.step(ctx, "install", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
		return r.o.installKey(ctx, n, key)
	}, func(k keyringJSON) error { return wantKey(k.has(r.newID), "does not list key %s", r.newID) })
	if err != nil {
		return nil, fmt.Errorf("step 1/3 (install key %s): %w\nNo member encrypts with the new key yet, so gossip is as it was. Fix that and run rotate again.", r.newID, err)
	}
	fmt.Fprintf(r.log, "step 1/3: every member holds key %s\n", r.newID)

	rings, err = r.step(ctx, "use", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
		resp, err := call(ctx, n, n.admin.UseGossipKey, &ringcachev1.UseGossipKeyRequest{Id: r.newID})
		return resp.GetKeyring(), err
	}, func(k keyringJSON) error { return wantKey(k.primary() == r.newID, "has primary %s", k.primary()) })
	if err != nil {
		return nil, fmt.Errorf("step 2/3 (make key %s primary): %w\nSome members may encrypt with the new key and others with the old one; every member holds both, so gossip goes on. Fix that and run rotate again; remove no key before it has finished.", r.newID, err)
	}
	fmt.Fprintf(r.log, "step 2/3: every member encrypts with key %s\n", r.newID)

	var old []string
	for _, k := range rings {
		for _, x := range k.Keys {
			if x.ID != r.newID && !slices.Contains(old, x.ID) {
				old = append(old, x.ID)
			}
		}
	}
	for _, id := range old {
		rings, err = r.step(ctx, "remove", func(ctx context.Context, n *node) (*ringcachev1.GossipKeyring, error) {
			resp, err := call(ctx, n, n.admin.RemoveGossipKey, &ringcachev1.RemoveGossipKeyRequest{Id: id})
			return resp.GetKeyring(), err
		}, func(k keyringJSON) error { return wantKey(!k.has(id), "still lists key %s", id) })
		if err != nil {
			return nil, fmt.Errorf("step 3/3 (remove key %s): %w\nEvery member encrypts with the new key; some still accept the old one. Run rotate again to finish.", id, err)
		}
	}
	if len(old) == 0 {
		fmt.Fprintf(r.log, "step 3/3: no other key to remove\n")
	} else {
		fmt.Fprintf(r.log, "step 3/3: removed key %s from every member\n", strings.Join(old, ", "))
	}
	return rings, nil
}

func wantKey(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// step runs rpc on every member concurrently, then checks each keyring that
// came back with check (nil: none) and that the alive members are still
// those the rotation started with. Its error names every member that
// failed.
func (r *rotation) step(ctx context.Context, what string, rpc func(context.Context, *node) (*ringcachev1.GossipKeyring, error), check func(keyringJSON) error) ([]keyringJSON, error) {
	rings := make([]keyringJSON, len(r.members))
	errs := make([]error, len(r.members))
	var wg sync.WaitGroup
	for i, m := range r.members {
		wg.Go(func() {
			kr, err := rpc(ctx, m.n)
			if err == nil {
				rings[i] = toKeyringJSON(m.name, m.n.addr, kr)
				if check != nil {
					err = check(rings[i])
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s of %s (%s): %w", what, m.name, m.n.addr, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rings, r.sameMembers(ctx)
}

// sameMembers fails when the alive members, as the seed sees them, are no
// longer those the rotation started with: a member that joined meanwhile
// lacks the new key, and one that left may come back without it.
func (r *rotation) sameMembers(ctx context.Context) error {
	alive, err := aliveMembers(ctx, r.seed)
	if err != nil {
		return fmt.Errorf("listing the members again: %w", err)
	}
	var now, then []string
	for _, m := range alive {
		now = append(now, m.GetName())
	}
	for _, m := range r.members {
		then = append(then, m.name)
	}
	slices.Sort(now)
	slices.Sort(then)
	if !slices.Equal(now, then) {
		return fmt.Errorf("the alive members changed from %v to %v during the step; run rotate again once they are stable", then, now)
	}
	return nil
}
