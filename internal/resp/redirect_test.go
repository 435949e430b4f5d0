package resp_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/ring"
)

// ownerIndex returns the index of the node of c that owns key's slot.
func ownerIndex(t *testing.T, c *clustertest.Cluster, key string) int {
	t.Helper()
	r := c.Node(c.Up()[0]).Ring()
	name := r.PartitionOwner(r.SlotPartition(ring.Slot(key))).Name
	for _, i := range c.Up() {
		if c.Node(i).Name() == name {
			return i
		}
	}
	t.Fatalf("the owner of %s, %s, is not a running node", key, name)
	return -1
}

// With resp.redirect: always (RESPConfig.RedirectAll) every connection
// gets MOVED, as from Redis Cluster: a client that never sent a cluster
// command gets it for a key another node owns (and CROSSSLOT for keys of
// several slots owned elsewhere), and is served the keys its node owns.
func TestRedirectAll_AConnectionWithoutClusterCommandsGetsMoved(t *testing.T) {
	c := startCluster(t, 3, func(_ int, cfg *node.Config) { cfg.RESP.RedirectAll = true })
	addrs := respAddrs(c)
	plain := goRedis(t, addrs[0], nil)
	var mine, theirs string
	for k := 0; mine == "" || theirs == ""; k++ {
		key := fmt.Sprintf("k%d", k)
		if ownerIndex(t, c, key) == 0 {
			mine = key
		} else {
			theirs = key
		}
	}
	if err := plain.Set(ctx, mine, "v", 0).Err(); err != nil {
		t.Fatalf("SET of a key node 0 owns: %v", err)
	}
	if got, err := plain.Get(ctx, mine).Result(); err != nil || got != "v" {
		t.Fatalf("GET of a key node 0 owns = %q, %v", got, err)
	}
	want := fmt.Sprintf("MOVED %d %s", ring.Slot(theirs), addrs[ownerIndex(t, c, theirs)])
	if err := plain.Get(ctx, theirs).Err(); err == nil || err.Error() != want {
		t.Fatalf("GET of a key node %d owns = %v; want %q", ownerIndex(t, c, theirs), err, want)
	}
	before := forwards(t, c)
	if err := plain.Set(ctx, theirs, "w", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
		t.Fatalf("SET of a key another node owns = %v; want MOVED", err)
	}
	// As on Redis Cluster, keys of several slots, some owned elsewhere,
	// are refused.
	if err := plain.MGet(ctx, mine, theirs).Err(); err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT ") {
		t.Fatalf("MGET of keys of two slots, one owned elsewhere = %v; want CROSSSLOT", err)
	}
	if n := forwards(t, c) - before; n != 0 {
		t.Fatalf("%d ops forwarded; with RedirectAll nothing is", n)
	}
}

// A SIGHUP that changes resp.redirect (node.ReloadRESPRedirect) applies
// to the connections accepted after it; an open one keeps its mode.
func TestRedirectAll_AReloadAppliesToNewConnections(t *testing.T) {
	c := startCluster(t, 3, nil)
	addr := respAddrs(c)[0]
	var theirs string
	for k := 0; theirs == ""; k++ {
		if key := fmt.Sprintf("k%d", k); ownerIndex(t, c, key) != 0 {
			theirs = key
		}
	}
	get := func(cl *redis.Client) error { return cl.Get(ctx, theirs).Err() }
	before := goRedis(t, addr, func(o *redis.Options) { o.PoolSize = 1 })
	if err := get(before); err != redis.Nil {
		t.Fatalf("GET of another node's key before the reload = %v; want it forwarded (nil)", err)
	}
	c.Node(0).ReloadRESPRedirect(true)
	if err := get(goRedis(t, addr, nil)); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
		t.Fatalf("GET on a connection made after the reload to always = %v; want MOVED", err)
	}
	if err := get(before); err != redis.Nil {
		t.Fatalf("GET on the connection open before the reload = %v; want it still forwarded", err)
	}
	c.Node(0).ReloadRESPRedirect(false)
	if err := get(goRedis(t, addr, nil)); err != redis.Nil {
		t.Fatalf("GET on a connection made after the reload to auto = %v; want it forwarded", err)
	}
}

// Cluster clients send most commands on connections that never sent a
// cluster command, which the default mode serves by forwarding: after a
// join, rueidis's map went stale for 0.3-0.8 s of forwarded ops here, and
// go-redis's until a MOVED reaches the one connection it read the map on.
// With RedirectAll every op on a moved key gets MOVED and goes straight to
// the new owner: not one op is forwarded after the join, from the first.
func TestRedirectAll_ClusterClientsAreNeverForwardedAfterAJoin(t *testing.T) {
	c := startCluster(t, 3, func(_ int, cfg *node.Config) { cfg.RESP.RedirectAll = true })
	rc := rueidisCluster(t, respAddrs(c))
	gc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: respAddrs(c)}) // default reload interval: 60 s
	t.Cleanup(func() { gc.Close() })
	if err := setThenGet(rc, gc, 0); err != nil {
		t.Fatal(err)
	}
	c.AddNode()
	c.WaitConverged()
	before := forwards(t, c)
	for r := 1; r <= 3; r++ {
		if err := setThenGet(rc, gc, r); err != nil {
			t.Fatalf("pass %d after the join: %v", r, err)
		}
	}
	if n := forwards(t, c) - before; n != 0 {
		t.Fatalf("%d ops forwarded after the join; with RedirectAll a moved key gets MOVED", n)
	}
}

// The door's map follows a change of membership alone: a joiner is
// Settling (its keys are forwarded, not MOVED) until gossip shows that it
// routes by the table, and that changes no table on the other nodes. A
// map built in that window and kept until the next table would forward
// the joiner's keys for good. The old nodes' maps are read all through
// the join, so that some are built in the window.
func TestRedirectAll_AJoinerGetsMovedOnceItSettles(t *testing.T) {
	c := startCluster(t, 3, func(_ int, cfg *node.Config) { cfg.RESP.RedirectAll = true })
	var plains []*redis.Client
	for _, a := range respAddrs(c) {
		plains = append(plains, goRedis(t, a, nil))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range plains {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.ClusterSlots(ctx) // builds the map if it is not current
			}
		})
	}
	joiner := c.AddNode()
	c.WaitConverged()
	close(stop)
	wg.Wait()

	var key string
	for k := 0; key == ""; k++ {
		if ownerIndex(t, c, fmt.Sprint("j", k)) == joiner {
			key = fmt.Sprint("j", k)
		}
	}
	want := fmt.Sprintf("MOVED %d %s", ring.Slot(key), c.Node(joiner).RESPAddr())
	for i, p := range plains {
		if err := p.Get(ctx, key).Err(); err == nil || err.Error() != want {
			t.Errorf("GET through %s of a key the joiner owns = %v; want %q", clustertest.NodeName(i), err, want)
		}
	}
}
