package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/internal/codec"
	"github.com/ringcache/ringcache/internal/rawnet"
	"github.com/ringcache/ringcache/internal/sent"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// nodeLinger is how long the client keeps the connection to a node that
// left its ring (and is no seed), in case it comes back.
const nodeLinger = time.Minute

// nodeConn is one node: a connection and its circuit breaker.
type nodeConn struct {
	retire  *time.Timer // closes the connection after nodeLinger; guarded by Client.mu
	addr    string
	cc      *grpc.ClientConn
	cache   pb.CacheClient
	pipe    *pipeline // nil with Options.Unary
	breaker *gobreaker.CircuitBreaker[any]
}

// pipelined reports whether calls to n go over its Pipeline stream.
func (n *nodeConn) pipelined() bool { return n.pipe != nil && n.pipe.supported() }

// one makes one Get, Set or Delete on n: op over its Pipeline stream, or
// rpc, the same call as an RPC of its own, when n does not serve Pipeline
// (or Options.Unary). It returns a Get's value and found flag.
func (n *nodeConn) one(ctx context.Context, op *pb.PipelineOp, rpc func(ctx context.Context) ([]byte, bool, error)) ([]byte, bool, error) {
	if n.pipelined() {
		r, err := n.pipe.do(ctx, op)
		if !errors.Is(err, errPipelineUnsupported) {
			return r.GetValue(), r.GetFound(), err
		}
	}
	var v []byte
	var found bool
	err := unary(ctx, func(ctx context.Context) (err error) {
		v, found, err = rpc(ctx)
		return err
	})
	return v, found, err
}

func (c *Client) closeConns() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for addr, n := range c.nodes {
		if n.retire != nil {
			n.retire.Stop()
		}
		n.cc.Close()
		delete(c.nodes, addr)
	}
}

// retain keeps the connections to the nodes of the ring (addrs) and to the
// seeds; those to other nodes close after nodeLinger unless they come back
// into the ring meanwhile. So a client of a cluster that replaces its
// nodes over time holds connections, breakers and streams for the nodes it
// uses, not for every node it ever saw.
func (c *Client) retain(addrs []string) {
	keep := make(map[string]bool, len(addrs)+len(c.opts.Seeds))
	for _, a := range addrs {
		keep[a] = true
	}
	for _, a := range c.opts.Seeds {
		keep[a] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, n := range c.nodes {
		switch {
		case keep[addr] && n.retire != nil:
			n.retire.Stop()
			n.retire = nil
		case !keep[addr] && n.retire == nil:
			var t *time.Timer
			t = time.AfterFunc(c.linger, func() { c.drop(addr, n, &t) }) // t is read under c.mu
			n.retire = t
		}
	}
}

// drop closes n, the connection to addr, unless it was kept (or retired
// anew, by a timer other than t) meanwhile.
func (c *Client) drop(addr string, n *nodeConn, t **time.Timer) {
	c.mu.Lock()
	if c.closed || c.nodes[addr] != n || n.retire != *t {
		c.mu.Unlock()
		return
	}
	delete(c.nodes, addr)
	c.mu.Unlock()
	n.cc.Close()
}

// node returns the connection to addr, dialling it (lazily) if new.
func (c *Client) node(addr string) (*nodeConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if n, ok := c.nodes[addr]; ok {
		return n, nil
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// vtproto's generated code, not protobuf's reflection (internal/codec).
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.ForceCodecV2(codec.Codec{})),
		// Fixed windows, as the nodes use: no BDP pings on busy connections.
		grpc.WithInitialWindowSize(1 << 20),
		grpc.WithInitialConnWindowSize(1 << 20),
		grpc.WithStatsHandler(sent.Handler{}), // tells calls that never left from calls in doubt
		// Raw reads and writes on TCP (internal/rawnet); a dialer in
		// Options.DialOptions replaces it.
		grpc.WithContextDialer(rawnet.Dial),
	}, append(c.dialSec, c.opts.DialOptions...)...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("ringcache client: %s: %w", addr, err)
	}
	n := &nodeConn{addr: addr, cc: cc, cache: pb.NewCacheClient(cc)}
	n.breaker = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:    addr,
		Timeout: 2 * time.Second, // open → half-open: probe the node again
		// Only a node that cannot be reached trips its breaker; a NOT_FOUND,
		// or a node reporting that the key's owner is unreachable, says the
		// node itself works.
		IsSuccessful: func(err error) bool { return !transportFailure(err) },
		ReadyToTrip:  func(cnt gobreaker.Counts) bool { return cnt.ConsecutiveFailures >= 3 },
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.log.Info("ringcache node circuit", "node", name, "from", from.String(), "to", to.String())
		},
	})
	if !c.opts.Unary {
		n.pipe = &pipeline{c: c, node: n}
	}
	c.nodes[addr] = n
	return n, nil
}
