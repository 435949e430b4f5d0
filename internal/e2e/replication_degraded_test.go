package e2e

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/pgtest"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// A replica that does not answer: min_replicas decides between failing the
// write and acknowledging it with fewer copies, counted.

func TestReplication_AReplicaThatDoesNotAnswer(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	f := newFleet(t, "n1", "n2", "n3")
	n1, n2 := f.all[0], f.all[1]
	cfg := f.writeConfig("repl.yaml", fmt.Sprintf(`backends:
  main: {driver: postgres, dsn: %q}
namespaces:
  strict:
    backend: main
    read: through
    write: behind
    write_behind: {flush_interval: 1h, replicas: 2, min_replicas: 2, replication_timeout: 300ms}
  lenient:
    backend: main
    read: through
    write: behind
    write_behind: {flush_interval: 1h, replicas: 2, min_replicas: 1, replication_timeout: 300ms}
`, dsn))
	f.launch(cfg, nil, f.all...)
	f.waitUp(3, f.all...)
	// Keys n1 owns whose replica (the owner without n1) is n2.
	strictKey, lenientKey := keyOwnedWithReplica(t, f, n1.grpcAddr, "strict", "n1", "n2"), keyOwnedWithReplica(t, f, n1.grpcAddr, "lenient", "n1", "n2")
	c1 := dial(t, n1)[0]
	ctx := context.Background()
	for _, ns := range []string{"strict", "lenient"} { // the streams are open
		if _, err := c1.cache.Set(ctx, &pb.SetRequest{Namespace: ns, Key: "warm-" + ns, Value: []byte("w")}); err != nil {
			t.Fatal(err)
		}
	}
	c2 := dial(t, n2)[0]
	j2, err := c2.journal()
	if err != nil {
		t.Fatal(err)
	}
	copiesBefore := j2.ReplicaPending
	if err := n2.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	defer n2.cmd.Process.Signal(syscall.SIGCONT)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, strictErr := c1.cache.Set(cctx, &pb.SetRequest{Namespace: "strict", Key: strictKey, Value: []byte("s")})
	cancel()
	cctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	_, lenientErr := c1.cache.Set(cctx, &pb.SetRequest{Namespace: "lenient", Key: lenientKey, Value: []byte("l")})
	cancel()
	took := time.Since(stopped)
	var r ringJSON
	f.ctlJSON(n1.grpcAddr, &r, "ring")
	j, err := c1.journal()
	if err != nil {
		t.Fatal(err)
	}
	if err := n2.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if len(r.Members) != 3 {
		t.Fatalf("n1 dropped the paused n2 from its ring within %s: the writes did not meet an unreachable replica", took)
	}
	t.Logf("min_replicas 2: %v", strictErr)
	if status.Code(strictErr) != codes.Unavailable || !strings.Contains(reasonOf(strictErr), reason.ReplicaUnavailable) || !strings.Contains(strictErr.Error(), "n2") {
		t.Fatalf("Set with its replica paused and min_replicas 2 = %v; want UNAVAILABLE, REPLICA_UNAVAILABLE, naming n2", strictErr)
	}
	if lenientErr != nil {
		t.Fatalf("Set with its replica paused and min_replicas 1 = %v; want it accepted", lenientErr)
	}
	if j.UnderReplicated == 0 {
		t.Fatalf("the accepted write is not counted as under-replicated: %+v", j)
	}
	t.Logf("both Sets answered %s after n2 was paused; n1 counts %d under-replicated writes", took.Round(time.Millisecond), j.UnderReplicated)
	// Once n2 answers again, n1 copies both writes there (the refused one
	// is in n1's journal too: "it may still be applied") and is in sync.
	waitInSync(t, []*nodeConn{c1})
	eventually(t, drainTimeout, "n2 holds copies of both writes", func() error {
		js, err := c2.journal()
		if err != nil {
			return err
		}
		if js.ReplicaPending < copiesBefore+2 {
			return fmt.Errorf("n2 holds %d copies, %d before the pause", js.ReplicaPending, copiesBefore)
		}
		return nil
	})
}

// keyOwnedWithReplica finds a key of ns that owner owns in the table the
// cluster routes by (as the node at addr shows it), with replica as its
// first successor: the node that holds its write-behind copy.
func keyOwnedWithReplica(t *testing.T, f *fleet, addr, ns, owner, replica string) string {
	t.Helper()
	var rj ringJSON
	f.ctlJSON(addr, &rj, "ring")
	var members []ring.Member
	index := map[string]uint32{}
	for _, m := range rj.Members {
		index[m.Name] = uint32(len(members))
		members = append(members, ring.Member{Name: m.Name})
	}
	owners := make([]uint32, len(rj.PartitionOwners))
	for p, name := range rj.PartitionOwners {
		owners[p] = index[name]
	}
	r, err := ring.FromOwners(ring.Config{PartitionCount: int(rj.PartitionCount)}, members, owners, rj.Version)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < 1_000_000; k++ {
		key := fmt.Sprintf("%s-%d", ns, k)
		p := r.PartitionOf(strategy.StoreKey(ns, key))
		if succ := r.Successors(p, 2); r.PartitionOwner(p).Name == owner && len(succ) == 2 && succ[1].Name == replica {
			return key
		}
	}
	t.Fatalf("no key of %s owned by %s with replica %s", ns, owner, replica)
	return ""
}

// reasonOf returns the ErrorInfo reason of a status error.
func reasonOf(err error) string { return reason.Of(err) }
