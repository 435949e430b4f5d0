package node_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/pkg/client"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// A node of one, a Set and a Get through the Go client, and a graceful
// Close.
func ExampleNew() {
	n, err := node.New(node.Config{
		Name:       "n1",
		GRPCAddr:   "127.0.0.1:0", // port 0: any free port; GRPCAddr says which
		GossipAddr: "127.0.0.1:0",
		// No Join: the node is a cluster of one, ready at once.
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "sessions", TTL: time.Hour}}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("ready:", n.Ready(), "members:", len(n.Members()))

	c, err := client.New(client.Options{Seeds: []string{n.GRPCAddr()}})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := c.Set(ctx, "sessions", "abc", []byte("hello"), 0); err != nil {
		panic(err)
	}
	v, found, err := c.Get(ctx, "sessions", "abc")
	fmt.Println(string(v), found, err)
	c.Close()

	// Close drains calls in flight (until ctx ends), leaves the cluster and
	// releases everything the node opened; a crash is Kill.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fmt.Println("close:", n.Close(ctx), "ready:", n.Ready())
	// Output:
	// ready: true members: 1
	// hello true <nil>
	// close: <nil> ready: false
}

// A read-through namespace: a miss is loaded by the key's owner, once for
// every concurrent caller, and cached for the namespace's TTL.
func ExampleNew_readThrough() {
	var loads atomic.Int64
	db := strategy.LoaderFunc(func(ctx context.Context, key string) ([]byte, bool, error) {
		loads.Add(1)
		time.Sleep(50 * time.Millisecond) // a slow query: concurrent callers share it
		if key == "missing" {
			return nil, false, nil
		}
		return []byte("profile of " + key), true, nil
	})
	n, err := node.New(node.Config{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []node.NamespaceSpec{{
			Policy: strategy.Policy{Name: "users", Read: strategy.ReadThrough, TTL: time.Minute, NegativeTTL: time.Second},
			Loader: db,
		}},
	})
	if err != nil {
		panic(err)
	}
	defer n.Kill()
	c, err := client.New(client.Options{Seeds: []string{n.GRPCAddr()}})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	ctx := context.Background()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if v, _, err := c.Get(ctx, "users", "42"); err != nil || string(v) != "profile of 42" {
				panic(fmt.Sprint(string(v), err))
			}
		})
	}
	wg.Wait()
	_, found, _ := c.Get(ctx, "users", "missing")
	fmt.Println("10 Gets of one key, then a missing key:", loads.Load(), "loads; found:", found)
	// Output:
	// 10 Gets of one key, then a missing key: 2 loads; found: false
}
