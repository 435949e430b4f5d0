package table

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ringcache/ringcache/pkg/ring"
)

// TestTableMessage_FitsOneMessageAt500Members measures what the
// coordinator sends each member after a join (Peer.PushTable: the new
// table and the one it was computed from) at the sizes of
// docs/capacity-planning.md, and holds that it stays far within gRPC's
// default 4 MiB receive limit.
func TestTableMessage_FitsOneMessageAt500Members(t *testing.T) {
	const grpcMaxRecv = 4 << 20
	for _, n := range []int{50, 500} {
		ms := make([]ring.Member, n+1)
		for i := range ms {
			ms[i] = ring.Member{Name: fmt.Sprintf("ringcache-%d", i), Addr: fmt.Sprintf("ringcache-%d.ringcache.default.svc:7101", i)}
		}
		prev, err := ring.New(ring.DefaultConfig(), ms[:n], 1<<16)
		if err != nil {
			t.Fatal(err)
		}
		next, err := ring.Rebalance(prev, ms, 2<<16)
		if err != nil {
			t.Fatal(err)
		}
		base := table{r: prev, since: map[string]uint64{}}
		for _, m := range prev.Members() {
			base.since[m.Name] = prev.Version()
		}
		size := proto.Size(message(table{r: next, prev: prev, since: base.after(next)}, 1))
		t.Logf("members=%d→%d partitions=%d: push %d B, %d B to all members", n, n+1, next.PartitionCount(), size, size*n)
		if size < 2*next.PartitionCount() || size > grpcMaxRecv/8 {
			t.Fatalf("members=%d: a table push is %d B, want between %d and %d", n, size, 2*next.PartitionCount(), grpcMaxRecv/8)
		}
	}
}
