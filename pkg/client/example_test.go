package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ringcache/ringcache/pkg/client"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func Example() {
	// A one-node cluster with a pure-cache namespace, for the example.
	n, err := node.New(node.Config{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "sessions", TTL: time.Hour}}},
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

	if err := c.Set(ctx, "sessions", "abc", []byte("hello"), 10*time.Minute); err != nil {
		panic(err)
	}
	v, found, _ := c.Get(ctx, "sessions", "abc")
	fmt.Println(found, string(v))

	_ = c.Delete(ctx, "sessions", "abc")
	_, found, _ = c.Get(ctx, "sessions", "abc")
	fmt.Println(found)

	_, _, err = c.Get(ctx, "nope", "abc")
	fmt.Println(err)
	// Output:
	// true hello
	// false
	// rpc error: code = NotFound desc = unknown namespace "nope"; configured namespaces: [sessions]
}

func ExampleClient_GetOrLoad() {
	n, err := node.New(node.Config{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "profiles", TTL: time.Hour}}},
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

	loads := 0
	loadFromDB := func(context.Context) ([]byte, error) {
		loads++ // the application's own database query
		return []byte(`{"name":"Ada"}`), nil
	}
	for range 3 {
		v, err := c.GetOrLoad(context.Background(), "profiles", "42", loadFromDB)
		fmt.Println(string(v), err)
	}
	fmt.Println("database queries:", loads)
	// Output:
	// {"name":"Ada"} <nil>
	// {"name":"Ada"} <nil>
	// {"name":"Ada"} <nil>
	// database queries: 1
}
