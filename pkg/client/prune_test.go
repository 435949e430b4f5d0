package client

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/ringcache/ringcache/internal/clustertest"
)

// conns returns the addresses the client holds connections to, sorted.
func (c *Client) conns() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for a := range c.nodes {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

func (c *Client) conn(addr string) *nodeConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[addr]
}

// A node that leaves the client's ring loses its connection, breaker and
// stream after the linger, so a client of a cluster that replaces its
// nodes does not hold one for every node it ever saw.
func TestClient_DropsNodesThatLeftItsRing(t *testing.T) {
	c := clustertest.Start(t, 3, clustertest.Options{})
	cl, err := newClient(Options{Seeds: []string{c.Node(0).GRPCAddr()}}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	clustertest.Eventually(t, 10*time.Second, func() error {
		if n := len(cl.Nodes()); n != 3 {
			return fmt.Errorf("client ring has %d nodes", n)
		}
		return nil
	})
	// A call to every node: a connection and a Pipeline stream each.
	for i := range 3 {
		addr := c.Node(i).GRPCAddr()
		for k := 0; ; k++ {
			if key := fmt.Sprint("k", k); cl.Owner(clustertest.NSCache, key) == addr {
				if err := cl.Set(testCtx(t), clustertest.NSCache, key, []byte("v"), 0); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	}
	all := []string{c.Node(0).GRPCAddr(), c.Node(1).GRPCAddr(), c.Node(2).GRPCAddr()}
	slices.Sort(all)
	if got := cl.conns(); !slices.Equal(got, all) {
		t.Fatalf("connections = %v, want one to each node %v", got, all)
	}
	gone := c.Node(2).GRPCAddr()
	left := cl.conn(gone)

	c.Stop(2)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if got := cl.conns(); slices.Contains(got, gone) {
			return fmt.Errorf("still connected to %s, which left: %v", gone, got)
		}
		return nil
	})
	if s := left.cc.GetState(); s != connectivity.Shutdown {
		t.Fatalf("the dropped connection is %v, want closed", s)
	}
	if got := len(cl.conns()); got != 2 {
		t.Fatalf("%d connections, want the 2 nodes left", got)
	}
	for k := range 20 { // every key still served, by the two left
		if err := cl.Set(testCtx(t), clustertest.NSCache, fmt.Sprint("after-", k), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
}

// A node that comes back into the ring within the linger keeps its
// connection, and seeds are never dropped.
func TestClient_RetainKeepsSeedsAndNodesThatComeBack(t *testing.T) {
	const seed = "127.0.0.1:1" // nothing listens: no ring ever arrives, only the test calls retain
	cl, err := newClient(Options{Seeds: []string{seed}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	a, err := cl.node("127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	b, err := cl.node("127.0.0.1:3")
	if err != nil {
		t.Fatal(err)
	}
	retiring := func(n *nodeConn) bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return n.retire != nil
	}

	cl.retain([]string{a.addr})
	if !retiring(b) || retiring(a) || retiring(cl.conn(seed)) {
		t.Fatalf("after a ring of a alone: a retiring %v, b retiring %v, seed retiring %v; want only b", retiring(a), retiring(b), retiring(cl.conn(seed)))
	}
	cl.retain([]string{a.addr, b.addr})
	if retiring(b) || cl.conn(b.addr) != b {
		t.Fatal("b came back into the ring within the linger but lost its connection")
	}
}
