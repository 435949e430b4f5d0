package engine

import (
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Execute runs ops for caller: every Get, Set, Delete and Lease of every
// front door passes here. For each op it checks the namespace and the
// request, then routes it: served here when this node owns the key (or a
// peer forwarded it), answered from the hot cache, or forwarded to the
// owner together with the batch's other ops for that owner (one peer call
// per owner).
//
// done receives each op's result exactly once, by index. Ops answered from
// memory (a hit, a cache-aside write, a hot-cache hit, a bad request) get
// it before Execute returns, on the calling goroutine. Work that must wait
// (a load, a database or journal write, a forward) runs through spawn,
// which may run it on another goroutine (and may block to bound them);
// such ops get their result from it. nil spawn runs the work inline, so
// Execute returns with every result delivered.
func (e *Engine) Execute(ctx context.Context, c Caller, ops []Op, done func(i int, r Result), spawn func(func())) {
	if spawn == nil {
		spawn = func(f func()) { f() }
	}
	e.checkStall() // nothing cached before a stall past detection is served
	guarded := func(i int, f func()) {
		defer func() {
			if v := recover(); v != nil {
				e.log.Error("op panicked", "panic", v, "stack", string(debug.Stack()))
				done(i, Result{Err: fmt.Errorf("internal error: %v", v)})
			}
		}()
		f()
	}
	cur := e.ring.Load()
	var r *ring.Ring // nil for forwarded ops this node serves whatever its table says
	if c.Forwarded {
		e.stats.forwardedIn.Add(uint64(len(ops)))
		// A sender behind this node's table routed by one it has replaced:
		// an op of a partition another member owns now goes on to it,
		// where a write is seen by the reads served there (versions only
		// grow along the way, so it never comes back). A node a wake found
		// left out compares with its peers' table, in which it owns
		// nothing: a sender still on the table it had sends it ops it
		// must not serve.
		if newest := e.routedBy(cur); newest != nil && c.TableVersion != 0 && ring.NewerVersion(newest.Version(), c.TableVersion) {
			r = newest
		}
	} else if r = cur; r == nil || !e.ready.Load() {
		// Not joined yet. A draining node still serves what reaches it
		// until its server stops: it is in its peers' rings until it leaves.
		for i := range ops {
			done(i, Result{Err: ErrNotReady})
		}
		return
	} else {
		// Back from a stall its cluster took it out for, it owns nothing
		// until a table takes it back: every op goes to its owner by the
		// table the others route by.
		r = e.routedBy(r)
	}
	var remote map[string]*batch // by owner name
	var version uint64           // of the table the batches are routed by
	if routed := cmp.Or(r, cur); routed != nil {
		version = routed.Version()
	}
	if c.Forwarded && ring.NewerVersion(c.TableVersion, version) {
		// Sent on by a leaving node that handed the key over (below), the
		// op keeps the newer version it came with: versions never go down
		// along a forward's hops.
		version = c.TableVersion
	}
	for i := range ops {
		guarded(i, func() {
			op := &ops[i]
			if !c.Forwarded {
				if err := e.authorize(c, op); err != nil {
					done(i, Result{Err: err})
					return
				}
			}
			ns, err := e.admit(op)
			if err != nil {
				done(i, Result{Err: err})
				return
			}
			var owner ring.Member
			if r == nil {
				owner.Name = e.cfg.Self
			} else {
				owner = r.PartitionOwner(r.PartitionOfKey(op.Namespace, op.Key))
			}
			if owner.Name == e.cfg.Self {
				// A leaving node that handed the key's partition over sends
				// it on to its new owner, which serves a forwarded op
				// whatever its ring says: one more hop, never a bounce.
				opDone, exit := e.gateWrite(op.Kind, done)
				to, handed := e.handedTo(op.Namespace, op.Key)
				if !handed {
					e.serve(ctx, ns, i, op, opDone, spawn)
					return
				}
				exit()
				owner = to
			}
			// Checked before it costs a forward; the owner checks again.
			if err := ns.ValidateKey(op.Key); err != nil {
				done(i, Result{Err: err})
				return
			}
			rk := ring.Key(op.Namespace, op.Key)
			if op.Kind == Get && e.cfg.Hot != nil {
				if v, found, ok := e.cfg.Hot.Get(rk, owner); ok {
					done(i, Result{Value: v, Found: found})
					return
				}
			}
			if remote == nil {
				remote = map[string]*batch{}
			}
			b := remote[owner.Name]
			if b == nil {
				b = &batch{owner: owner, version: version}
				remote[owner.Name] = b
			}
			b.add(i, op, rk)
		})
	}
	for _, b := range remote {
		spawn(func() { e.forward(ctx, b, ops, done) })
	}
}

// authorize checks that the caller may run op, and takes it from the
// caller's rate (a pipelined op counts as one call), before anything else:
// a caller learns nothing about namespaces it may not use. Denials, and
// every op on an audited namespace, go to the audit log.
func (e *Engine) authorize(c Caller, op *Op) error {
	var err error
	if a := e.cfg.Auth; a != nil {
		if err = a.Authorize(c.Principal, op.Kind.role(), op.Namespace); err == nil {
			err = a.Limit(c.Principal)
		}
	}
	if l := e.cfg.Audit; l != nil && (err != nil || e.audited[op.Namespace]) {
		r := audit.Record{Principal: c.Principal, Remote: c.Remote, Method: cmp.Or(op.Method, c.Method), Namespace: op.Namespace, Key: op.Key, Allowed: err == nil}
		if err != nil {
			r.Reason = err.Error()
		}
		l.Write(r)
	}
	return err
}

// admit checks what the namespace does not check itself: that it exists,
// and a Set's TTL.
func (e *Engine) admit(op *Op) (*strategy.Namespace, error) {
	ns, err := e.Namespace(op.Namespace)
	if err != nil {
		return nil, err
	}
	switch op.Kind {
	case Get, Delete, Lease:
	case Set:
		if op.TTL < 0 {
			return nil, fmt.Errorf("%w: ttl is not a valid non-negative duration", strategy.ErrInvalidArgument)
		}
		if err := ns.ValidateValue(op.Value); err != nil {
			return nil, err
		}
	default:
		if err := admitExt(ns, op); err != nil {
			return nil, err
		}
	}
	return ns, nil
}

// serve runs op on this node as the key's owner: from memory at once when
// it can, else through spawn.
func (e *Engine) serve(ctx context.Context, ns *strategy.Namespace, i int, op *Op, done func(int, Result), spawn func(func())) {
	switch op.Kind {
	case Get:
		v, found, answered, err := ns.Peek(op.Key) // checks the key
		if err == nil {
			e.track(ns, op)
		}
		if answered || err != nil {
			done(i, Result{Value: v, Found: found, Err: err})
			return
		}
		e.wait(ctx, i, op, done, spawn, func(ctx context.Context) Result { // a miss that loads: Peek counted the Get
			v, found, err := ns.Load(ctx, op.Key)
			return Result{Value: v, Found: found, Err: err}
		})
	case Set:
		if !ns.WritesWait() && op.LeaseToken == 0 { // memory only
			done(i, Result{Err: ns.Set(ctx, op.Key, op.Value, op.TTL)})
			return
		}
		e.wait(ctx, i, op, done, spawn, func(ctx context.Context) Result {
			return Result{Err: ns.SetLeased(ctx, op.Key, op.Value, op.TTL, op.LeaseToken)}
		})
	case Delete:
		if !ns.WritesWait() {
			done(i, Result{Err: ns.Delete(ctx, op.Key)})
			return
		}
		e.wait(ctx, i, op, done, spawn, func(ctx context.Context) Result {
			return Result{Err: ns.Delete(ctx, op.Key)}
		})
	case Lease:
		e.wait(ctx, i, op, done, spawn, func(ctx context.Context) Result {
			l, err := ns.Lease(ctx, op.Key)
			return Result{Value: l.Value, Found: l.Found, LeaseToken: l.Token, Wait: l.Wait, Err: err}
		})
	default:
		e.serveExt(ctx, ns, i, op, done, spawn)
	}
}

// wait runs an op that waits through spawn, within the op's timeout.
func (e *Engine) wait(ctx context.Context, i int, op *Op, done func(int, Result), spawn func(func()), run func(context.Context) Result) {
	spawn(func() {
		defer func() {
			if v := recover(); v != nil {
				e.log.Error("op panicked", "panic", v, "stack", string(debug.Stack()))
				done(i, Result{Err: fmt.Errorf("internal error: %v", v)})
			}
		}()
		ctx, cancel := context.WithTimeout(ctx, e.timeout(op.Timeout))
		defer cancel()
		done(i, run(ctx))
	})
}

// timeout returns how long an op that waits may take.
func (e *Engine) timeout(t0 time.Duration) time.Duration {
	if t0 <= 0 || t0 > e.cfg.ForwardTimeout {
		return e.cfg.ForwardTimeout
	}
	return t0
}
