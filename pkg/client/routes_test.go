package client

import (
	"fmt"
	"testing"

	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// ringMsg is what a node sends for r (internal/service does the same).
func ringMsg(r *ring.Ring) *pb.WatchRingResponse {
	msg := &pb.WatchRingResponse{Version: r.Version(), PartitionCount: uint32(r.PartitionCount()),
		Owners: r.Owners(), DefaultNamespace: r.Config().DefaultNamespace}
	for _, m := range r.Members() {
		msg.Nodes = append(msg.Nodes, &pb.RingNode{Name: m.Name, GrpcAddr: m.Addr})
	}
	return msg
}

func TestRoutes_SendEachKeyToItsOwnerUnderTheDefaultNamespace(t *testing.T) {
	var ms []ring.Member
	for i := range 5 {
		ms = append(ms, ring.Member{Name: fmt.Sprint("n", i), Addr: fmt.Sprint("10.0.0.", i, ":7101")})
	}
	r, err := ring.New(ring.Config{DefaultNamespace: "main"}, ms, 3)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := routesFrom(ringMsg(r))
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"main", "users", ""} {
		for k := range 500 {
			key := fmt.Sprint("k", k)
			if got, want := routes.owner(ns, key), r.Owner(ring.Key(ns, key)).Addr; got != want {
				t.Fatalf("(%q, %q) goes to %s, its owner is %s", ns, key, got, want)
			}
		}
	}
	// In the default namespace, "users:7" is the Redis key of ("users", "7").
	if routes.owner("main", "users:7") != routes.owner("users", "7") {
		t.Fatal(`("main", "users:7") and ("users", "7") are routed apart`)
	}
}

func TestRoutes_RefuseMalformedRings(t *testing.T) {
	r, err := ring.New(ring.Config{}, []ring.Member{{Name: "a", Addr: "a:1"}, {Name: "b", Addr: "b:1"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for name, spoil := range map[string]func(*pb.WatchRingResponse){
		"hash partitioning (271)": func(m *pb.WatchRingResponse) { m.PartitionCount, m.Owners = 271, m.Owners[:271] },
		"owners missing":          func(m *pb.WatchRingResponse) { m.Owners = m.Owners[1:] },
		"owner out of range":      func(m *pb.WatchRingResponse) { m.Owners[9] = 2 },
		"no partitions":           func(m *pb.WatchRingResponse) { m.PartitionCount, m.Owners = 0, nil },
	} {
		msg := ringMsg(r)
		spoil(msg)
		if _, err := routesFrom(msg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
