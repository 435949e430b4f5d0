package node_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// gossipNode starts a node with real gossip on loopback, the given keys and
// seeds, and a short bootstrap timeout.
func gossipNode(t *testing.T, name string, keys [][]byte, join []string, alone bool) *node.Node {
	t.Helper()
	n, err := node.New(node.Config{
		Name: name, GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", Join: join,
		GossipKeys: keys, TuneGossip: clustertest.FastGossip,
		BootstrapTimeout: 300 * time.Millisecond, BootstrapAlone: alone,
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "c", TTL: time.Minute}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	return n
}

// stillNotReady checks for a while that n stays not ready, for why.
func stillNotReady(t *testing.T, n *node.Node, why string) {
	t.Helper()
	deadline := time.Now().Add(1500 * time.Millisecond) // five bootstrap timeouts
	for time.Now().Before(deadline) {
		if n.Ready() {
			t.Fatalf("%s serves alone", n.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := n.NotReady(); err == nil || !strings.Contains(err.Error(), why) {
		t.Fatalf("NotReady = %v, want a reason containing %q", err, why)
	}
	// Calls are refused, with the reason programs retry on.
	_, err := n.CacheServer().Get(ctxT(t), &pb.GetRequest{Namespace: "c", Key: "k"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Get on a node that has not joined = %v, want UNAVAILABLE", err)
	}
}

func TestNode_RefusedBySeedsNeverServesAlone(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	a := gossipNode(t, "a", [][]byte{k1}, nil, false)
	clustertest.Eventually(t, 5*time.Second, func() error { return a.NotReady() })
	// The wrong key, even with the opt-in to serve alone: the cluster
	// exists and holds other data.
	b := gossipNode(t, "b", [][]byte{k2}, []string{a.GossipAddr()}, true)
	stillNotReady(t, b, "refused")
	// Once it has the cluster's key, it joins and serves.
	if err := b.RotateGossipKeys([][]byte{k2, k1}); err != nil {
		t.Fatal(err)
	}
	if err := b.RotateGossipKeys([][]byte{k1, k2}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 10*time.Second, b.NotReady)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if got := len(b.Ring().Members()); got != 2 {
			return fmt.Errorf("b's ring has %d members after joining, want 2", got)
		}
		return nil
	})
}

func TestNode_SilentSeedsServeAloneOnlyWithOptIn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // a seed address nobody gossips on
	if err != nil {
		t.Fatal(err)
	}
	silent := l.Addr().String()
	l.Close()
	without := gossipNode(t, "without", nil, []string{silent}, false)
	stillNotReady(t, without, "bootstrap-alone")
	with := gossipNode(t, "with", nil, []string{silent}, true)
	clustertest.Eventually(t, 5*time.Second, with.NotReady)
}
