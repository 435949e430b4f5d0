package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/invalwatch"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/internal/sent"
)

// Reason returns the reason a node gave for err (google.rpc.ErrorInfo,
// domain "ringcache.io"; cache.proto lists them), or "" when err carries
// none: it is no node's answer (the connection failed) or no error.
func Reason(err error) string { return reason.Of(err) }

// RetryDelay returns the delay after which a node said a retry may
// succeed (google.rpc.RetryInfo), or 0 when it said none.
func RetryDelay(err error) time.Duration { return reason.RetryDelay(err) }

// unreachable reports whether err says the node could not serve the call
// at all, so another node may: the node could not be reached, is not
// ready, or could not reach the key's owner. A node reporting that the
// database is down is not unreachable: another node would ask the same
// database.
func unreachable(err error) bool {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return true
	}
	switch reason.Of(err) {
	case reason.NodeNotReady, reason.OwnerUnreachable, reason.OwnerConnectionLost:
		return true
	}
	return transportFailure(err)
}

// transportFailure reports whether err is gRPC's own report that the node
// could not be reached or the connection broke, as opposed to an answer of
// the node (which carries a reason, whatever its code). Only transport
// failures trip a node's breaker.
func transportFailure(err error) bool {
	return status.Code(err) == codes.Unavailable && !reason.FromNode(err)
}

// notSent reports whether a failed call surely did not reach any node that
// could have applied it: the breaker refused it, it never reached a
// connection, the node was not ready, or the node could not send it to the
// key's owner. Only then may a write be retried: a retried Set gets a newer
// version and could overwrite another client's later write.
func notSent(err error) bool {
	if errors.Is(err, errNotSent) || errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return true
	}
	switch reason.Of(err) {
	case reason.NodeNotReady, reason.OwnerUnreachable:
		return true
	}
	return false
}

// unary makes one unary RPC with ctx, marking its error as not sent when
// the call never reached a connection.
func unary(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, tr := sent.Track(ctx)
	err := call(ctx)
	if err != nil && !tr.Sent() && status.Code(err) == codes.Unavailable {
		return markNotSent(err)
	}
	return err
}

// candidates returns the nodes to try for key: its owner first, then the
// others in ring order, then the seeds.
func (c *Client) candidates(ns, key string) []string {
	r := c.ring.Load()
	if r == nil {
		return c.opts.Seeds
	}
	owner := r.owner(ns, key)
	out := make([]string, 0, len(r.addrs)+len(c.opts.Seeds))
	out = append(out, owner)
	for _, a := range r.addrs {
		if a != owner {
			out = append(out, a)
		}
	}
	for _, s := range c.opts.Seeds {
		if s != owner && !contains(r.addrs, s) {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// call runs fn on the key's owner, and on other nodes while the ones tried
// are unreachable (at most Retries more), backing off between tries.
//
// A write (write=true) is tried on another node only when the failed try
// surely did not reach the cluster (notSent); a read on any unreachable.
func (c *Client) call(ctx context.Context, ns, key string, write bool, fn func(ctx context.Context, n *nodeConn) error) error {
	c.calls.Add(1)
	if err := checkText(ns, key); err != nil {
		return err // proto3 strings must be UTF-8: such a call cannot be encoded
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
		defer cancel()
	}
	// The owner first; the list of other nodes is built only when needed.
	owner := c.Owner(ns, key)
	err := c.try(ctx, owner, fn)
	if !c.retryable(err, write) {
		return err
	}
	failed := &triedError{tries: []string{owner + ": " + err.Error()}, last: err}
	b := &backoff.ExponentialBackOff{InitialInterval: c.opts.RetryBackoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Second}
	for i, addr := range c.candidates(ns, key) {
		if i == 0 {
			continue // the owner, tried above
		}
		if i > c.opts.Retries {
			break
		}
		c.retries.Add(1)
		if werr := invalwatch.Sleep(ctx, b.NextBackOff()); werr != nil {
			return fmt.Errorf("%w (%w)", werr, failed)
		}
		if err = c.try(ctx, addr, fn); !c.retryable(err, write) {
			return err
		}
		failed.tries = append(failed.tries, addr+": "+err.Error())
		failed.last = err
	}
	if len(failed.tries) == 1 {
		return err // no other node to try
	}
	return failed
}

// triedError is the error of a call that failed on every node it tried:
// the last try's error (its gRPC status and reason, through errors.As),
// told with every try's, since the first failure is often the one that
// explains the others.
type triedError struct {
	tries []string // "addr: error", in the order tried
	last  error
}

func (e *triedError) Error() string {
	return fmt.Sprintf("every node tried failed (%d): %s", len(e.tries), strings.Join(e.tries, "; "))
}

func (e *triedError) Unwrap() error { return e.last }

// try runs fn on the node at addr through its circuit breaker.
func (c *Client) try(ctx context.Context, addr string, fn func(ctx context.Context, n *nodeConn) error) error {
	n, err := c.node(addr)
	if err != nil {
		return err
	}
	_, err = n.breaker.Execute(func() (any, error) { return nil, fn(ctx, n) })
	return err
}

// retryable reports whether a failed try may be repeated on another node.
func (c *Client) retryable(err error, write bool) bool {
	return err != nil && unreachable(err) && (!write || notSent(err))
}
