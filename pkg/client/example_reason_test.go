package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringcache/ringcache/pkg/client"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Programs decide on an error's code and reason, never on its message. A
// database outage is BACKEND_UNAVAILABLE: retrying on another node would
// ask the same database, so the client does not.
func ExampleReason() {
	down := strategy.LoaderFunc(func(context.Context, string) ([]byte, bool, error) {
		return nil, false, errors.New("dial tcp 10.0.0.9:5432: connection refused")
	})
	n, err := node.New(node.Config{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "users", Read: strategy.ReadThrough, TTL: time.Minute}, Loader: down}},
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

	_, _, err = c.Get(context.Background(), "users", "42")
	fmt.Println(client.Reason(err), "retries:", c.Stats().Retries)
	_, _, err = c.Get(context.Background(), "orders", "42")
	fmt.Println(client.Reason(err))
	fmt.Println(client.Reason(nil) == "")
	// Output:
	// BACKEND_UNAVAILABLE retries: 0
	// UNKNOWN_NAMESPACE
	// true
}
