package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/pkg/client"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// loadCounts counts the backend loads each node of a cluster runs.
type loadCounts []atomic.Int64

// configure wraps every loader of node i so its loads are counted in l[i].
func (l loadCounts) configure(i int, cfg *node.Config) {
	specs := slices.Clone(cfg.Namespaces)
	for k, s := range specs {
		if s.Loader == nil {
			continue
		}
		specs[k].Loader = strategy.LoaderFunc(func(ctx context.Context, key string) ([]byte, bool, error) {
			l[i].Add(1)
			return s.Loader.Load(ctx, key)
		})
	}
	cfg.Namespaces = specs
}

func (l loadCounts) snapshot() []int64 {
	out := make([]int64, len(l))
	for i := range l {
		out[i] = l[i].Load()
	}
	return out
}

// since returns the loads each node ran since before.
func (l loadCounts) since(before []int64) []int64 {
	out := l.snapshot()
	for i := range out {
		out[i] -= before[i]
	}
	return out
}

// only returns a count per node with one load on node i.
func only(nodes, i int) []int64 {
	out := make([]int64, nodes)
	out[i] = 1
	return out
}

func nodeIndex(t *testing.T, c *clustertest.Cluster, addr string) int {
	t.Helper()
	for _, i := range c.Up() {
		if c.Node(i).GRPCAddr() == addr {
			return i
		}
	}
	t.Fatalf("no running node at %s", addr)
	return -1
}

// A database outage is the same database from every node: the client
// must not retry a read that failed on it elsewhere, or one Get would
// cost the database a load per node.
func TestClient_DatabaseOutageCostsOneLoadAndNoRetry(t *testing.T) {
	loads := make(loadCounts, 3)
	c := clustertest.Start(t, 3, clustertest.Options{Configure: loads.configure})
	for _, unary := range []bool{false, true} {
		t.Run(fmt.Sprintf("unary=%v", unary), func(t *testing.T) {
			cl := newClient(t, c, client.Options{Unary: unary}) // Retries: the default 2
			c.DB.FailLoads(errors.New("dial tcp 10.0.0.9:5432: connection refused"))
			for k := range 6 {
				key := fmt.Sprintf("outage-%v-%d", unary, k)
				owner := nodeIndex(t, c, cl.Owner(clustertest.NSUsers, key))
				before := loads.snapshot()
				_, _, err := cl.Get(ctxT(t), clustertest.NSUsers, key)
				if status.Code(err) != codes.Unavailable || client.Reason(err) != reason.BackendUnavailable {
					t.Fatalf("Get during a database outage = %v (reason %q), want UNAVAILABLE with reason %s", err, client.Reason(err), reason.BackendUnavailable)
				}
				if got, want := loads.since(before), only(3, owner); !slices.Equal(got, want) {
					t.Fatalf("loads per node for one Get = %v, want %v: one, on the owner", got, want)
				}
			}
			if r := cl.Stats().Retries; r != 0 {
				t.Fatalf("the client retried %d times on other nodes during a database outage", r)
			}
			c.DB.FailLoads(nil)
			c.DB.Put("back", []byte("v"))
			if v, found, err := cl.Get(ctxT(t), clustertest.NSUsers, "back"); err != nil || !found || string(v) != "v" {
				t.Fatalf("Get once the database is back = %q, %v, %v", v, found, err)
			}
		})
	}
}

// refusingDialer is a TCP dialer that refuses the addresses it is told to,
// as if those nodes were down as far as the client can tell.
type refusingDialer struct {
	mu      sync.Mutex
	refused map[string]bool
}

func (d *refusingDialer) refuse(addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refused[addr] = true
}

func (d *refusingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	refused := d.refused[addr]
	d.mu.Unlock()
	if refused {
		return nil, fmt.Errorf("dial %s: connection refused (test)", addr)
	}
	return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
}

// A node the client cannot reach, or a node that cannot reach the key's
// owner, did not serve the call: the client tries the next node, and the
// owner still loads the key once.
func TestClient_UnreachableNodesAreRetriedElsewhere(t *testing.T) {
	loads := make(loadCounts, 3)
	c := clustertest.Start(t, 3, clustertest.Options{Configure: loads.configure})
	d := &refusingDialer{refused: map[string]bool{}}
	cl := newClient(t, c, client.Options{DialOptions: []grpc.DialOption{grpc.WithContextDialer(d.dial)}})
	// Keys owned by a node other than the seed, so the client's ring
	// stream (to the seed) stays up when the owner is refused.
	seed := c.Node(0).GRPCAddr()
	ownerAddr := cl.Nodes()[0]
	if ownerAddr == seed {
		ownerAddr = cl.Nodes()[1]
	}
	owner := nodeIndex(t, c, ownerAddr)
	var keys []string
	for k := 0; len(keys) < 2; k++ {
		if key := fmt.Sprint("user-", k); cl.Owner(clustertest.NSUsers, key) == ownerAddr {
			keys = append(keys, key)
			c.DB.Put(key, []byte(key))
		}
	}
	d.refuse(ownerAddr)

	// The owner refuses the client: the next node serves by forwarding.
	before := loads.snapshot()
	if v, _, err := cl.Get(ctxT(t), clustertest.NSUsers, keys[0]); err != nil || string(v) != keys[0] {
		t.Fatalf("Get with the owner unreachable from the client = %q, %v; want %q through another node", v, err, keys[0])
	}
	if r := cl.Stats().Retries; r != 1 {
		t.Fatalf("retries = %d, want 1 (the owner, then one other node)", r)
	}
	if got, want := loads.since(before), only(3, owner); !slices.Equal(got, want) {
		t.Fatalf("loads per node = %v, want %v", got, want)
	}

	// The next node cannot reach the owner either (OWNER_UNREACHABLE): the
	// client goes on to the third.
	var next string
	for _, a := range cl.Nodes() {
		if a != ownerAddr {
			next = a
			break
		}
	}
	c.Net.Cut(clustertest.NodeName(nodeIndex(t, c, next)), clustertest.NodeName(owner))
	defer c.Net.Heal()
	before = loads.snapshot()
	if v, _, err := cl.Get(ctxT(t), clustertest.NSUsers, keys[1]); err != nil || string(v) != keys[1] {
		t.Fatalf("Get with the owner unreachable from the client and from the next node = %q, %v; want %q through the third", v, err, keys[1])
	}
	if r := cl.Stats().Retries; r != 3 {
		t.Fatalf("retries = %d, want 3 (1 before, then 2 more)", r)
	}
	if got, want := loads.since(before), only(3, owner); !slices.Equal(got, want) {
		t.Fatalf("loads per node = %v, want %v", got, want)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
