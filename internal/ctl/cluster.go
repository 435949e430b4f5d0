package ctl

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

type membersJSON struct {
	Self    string       `json:"self"`
	Members []memberJSON `json:"members"`
}

type memberJSON struct {
	Name       string `json:"name"`
	GRPCAddr   string `json:"grpc_addr"`
	GossipAddr string `json:"gossip_addr"`
	State      string `json:"state"`
}

// memberState turns MEMBER_STATE_ALIVE into "alive".
func memberState(s ringcachev1.MemberState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "MEMBER_STATE_"))
}

func newMembersCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the cluster members as the node at --addr sees them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			resp, err := call(cmd.Context(), n, n.admin.Members, &ringcachev1.MembersRequest{})
			if err != nil {
				return err
			}
			v := membersJSON{Self: resp.GetSelf(), Members: []memberJSON{}}
			for _, m := range resp.GetMembers() {
				v.Members = append(v.Members, memberJSON{
					Name: m.GetName(), GRPCAddr: m.GetGrpcAddr(),
					GossipAddr: m.GetGossipAddr(), State: memberState(m.GetState()),
				})
			}
			slices.SortStableFunc(v.Members, func(a, b memberJSON) int { return cmp.Compare(a.Name, b.Name) })
			return o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
				t := newTable(w, "NAME", "GRPC ADDR", "GOSSIP ADDR", "STATE")
				for _, m := range v.Members {
					name := m.Name
					if name == v.Self {
						name += " (self)"
					}
					t.row(name, m.GRPCAddr, m.GossipAddr, m.State)
				}
				return t.flush()
			})
		},
	}
}

type ringJSON struct {
	Version         uint64           `json:"version"`
	PartitionCount  uint32           `json:"partition_count"`
	LoadFactor      float64          `json:"load_factor"`
	Members         []ringMemberJSON `json:"members"`
	PartitionOwners []string         `json:"partition_owners"`
}

type ringMemberJSON struct {
	Name         string  `json:"name"`
	GRPCAddr     string  `json:"grpc_addr"`
	Partitions   uint32  `json:"partitions"`
	SharePercent float64 `json:"share_percent"`
}

func newRingCommand(o *options) *cobra.Command {
	var partitions bool
	cmd := &cobra.Command{
		Use:   "ring",
		Short: "Show the hash ring of the node at --addr: members and partition shares",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			resp, err := call(cmd.Context(), n, n.admin.Ring, &ringcachev1.RingRequest{})
			if err != nil {
				return err
			}
			v := ringJSON{
				Version:         resp.GetVersion(),
				PartitionCount:  resp.GetPartitionCount(),
				LoadFactor:      resp.GetLoadFactor(),
				Members:         []ringMemberJSON{},
				PartitionOwners: append([]string{}, resp.GetPartitionOwners()...),
			}
			for _, m := range resp.GetMembers() {
				share := 0.0
				if v.PartitionCount > 0 {
					share = 100 * float64(m.GetPartitions()) / float64(v.PartitionCount)
				}
				v.Members = append(v.Members, ringMemberJSON{
					Name: m.GetName(), GRPCAddr: m.GetGrpcAddr(),
					Partitions: m.GetPartitions(), SharePercent: share,
				})
			}
			slices.SortStableFunc(v.Members, func(a, b ringMemberJSON) int { return cmp.Compare(a.Name, b.Name) })
			return o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintf(w, "version %d, %d partitions, load factor %g\n\n", v.Version, v.PartitionCount, v.LoadFactor)
				t := newTable(w, "NAME", "ADDR", "PARTITIONS", "SHARE%")
				for _, m := range v.Members {
					t.row(m.Name, m.GRPCAddr, m.Partitions, percent(uint64(m.Partitions), uint64(v.PartitionCount)))
				}
				if err := t.flush(); err != nil || !partitions {
					return err
				}
				fmt.Fprintln(w)
				t = newTable(w, "PARTITION", "OWNER")
				for id, owner := range v.PartitionOwners {
					t.row(id, owner)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().BoolVar(&partitions, "partitions", false, "also print the owner of every partition")
	return cmd
}

type locateJSON struct {
	Namespace     string `json:"namespace"`
	Key           string `json:"key"`
	Partition     uint32 `json:"partition"`
	Owner         string `json:"owner"`
	OwnerGRPCAddr string `json:"owner_grpc_addr"`
}

func newLocateCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "locate NAMESPACE KEY",
		Short: "Show the partition and owner of a key",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := o.connect(o.addr)
			if err != nil {
				return err
			}
			defer n.close()
			resp, err := call(cmd.Context(), n, n.admin.Locate,
				&ringcachev1.LocateRequest{Namespace: args[0], Key: args[1]})
			if err != nil {
				return err
			}
			v := locateJSON{
				Namespace: args[0], Key: args[1], Partition: resp.GetPartition(),
				Owner: resp.GetOwner(), OwnerGRPCAddr: resp.GetOwnerGrpcAddr(),
			}
			return o.render(cmd.OutOrStdout(), v, func(w io.Writer) error {
				t := newTable(w, "PARTITION", "OWNER", "OWNER ADDR")
				t.row(v.Partition, v.Owner, v.OwnerGRPCAddr)
				return t.flush()
			})
		},
	}
}
