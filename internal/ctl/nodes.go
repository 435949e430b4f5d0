package ctl

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// nodeResult is the answer of one asked node, or its error.
type nodeResult[T any] struct {
	// name is the member name; empty with --node-only, where only the
	// node's own answer can tell it.
	name string
	addr string
	resp T
	err  error
}

// label names the node in messages: "n2 (127.0.0.1:7102)", or the address.
func (r nodeResult[T]) label() string {
	if r.name == "" {
		return r.addr
	}
	return r.name + " (" + r.addr + ")"
}

// askNodes runs rpc on the node at --addr with nodeOnly, otherwise on every
// member that node reports alive, concurrently. It returns one result per
// asked node, in member order; its error is for failures before any node was
// asked (--addr unreachable, no alive members).
func askNodes[T any](ctx context.Context, o *options, nodeOnly bool, rpc func(context.Context, *node) (T, error)) ([]nodeResult[T], error) {
	seed, err := o.connect(o.addr)
	if err != nil {
		return nil, err
	}
	defer seed.close()
	if nodeOnly {
		resp, err := rpc(ctx, seed)
		return []nodeResult[T]{{addr: o.addr, resp: resp, err: err}}, nil
	}
	alive, err := aliveMembers(ctx, seed)
	if err != nil {
		return nil, err
	}
	results := make([]nodeResult[T], len(alive))
	for i, m := range alive {
		results[i] = nodeResult[T]{name: m.GetName(), addr: m.GetGrpcAddr()}
	}
	var wg sync.WaitGroup
	for i := range results {
		r := &results[i]
		wg.Go(func() { r.resp, r.err = askMember(ctx, o, seed, r.addr, rpc) })
	}
	wg.Wait()
	return results, nil
}

// aliveMembers returns the members seed reports alive; none is an error.
func aliveMembers(ctx context.Context, seed *node) ([]*ringcachev1.Member, error) {
	members, err := call(ctx, seed, seed.admin.Members, &ringcachev1.MembersRequest{})
	if err != nil {
		return nil, err
	}
	var alive []*ringcachev1.Member
	for _, m := range members.GetMembers() {
		if m.GetState() == ringcachev1.MemberState_MEMBER_STATE_ALIVE {
			alive = append(alive, m)
		}
	}
	if len(alive) == 0 {
		return nil, fmt.Errorf("node at %s reports no alive members", seed.addr)
	}
	return alive, nil
}

// askMember runs rpc on the node at addr, reusing seed when it is that node.
func askMember[T any](ctx context.Context, o *options, seed *node, addr string, rpc func(context.Context, *node) (T, error)) (T, error) {
	var zero T
	if addr == "" {
		return zero, errors.New("member has no gRPC address")
	}
	n := seed
	if addr != seed.addr {
		var err error
		if n, err = o.connect(addr); err != nil {
			return zero, err
		}
		defer n.close()
	}
	return rpc(ctx, n)
}

// nodeErrors joins the errors of results as "<what> of n3 (addr): err".
func nodeErrors[T any](what string, results []nodeResult[T]) error {
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s of %s: %w", what, r.label(), r.err))
		}
	}
	return errors.Join(errs...)
}

// explainedError replaces the message of err, which stays reachable through
// errors.As and errors.Is.
type explainedError struct {
	msg string
	err error
}

func (e *explainedError) Error() string { return e.msg }
func (e *explainedError) Unwrap() error { return e.err }
