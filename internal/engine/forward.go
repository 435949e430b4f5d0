package engine

import (
	"context"
	"fmt"

	"github.com/ringcache/ringcache/internal/hotcache"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// batch is the ops of one Execute call that one owner serves.
type batch struct {
	owner   ring.Member
	version uint64   // of the table the ops were routed by
	idx     []int    // indexes into the caller's ops
	rks     []string // routing keys
	req     *pb.ForwardRequest
}

func (b *batch) add(i int, op *Op, rk string) {
	if b.req == nil {
		b.req = &pb.ForwardRequest{}
	}
	b.idx = append(b.idx, i)
	b.rks = append(b.rks, rk)
	b.req.Ops = append(b.req.Ops, op.Proto(uint64(len(b.idx)-1)))
}

// forward sends b to its owner in one peer call and hands each op its
// result. Gets of hot keys fill the hot cache with the owner's answer;
// writes drop the key's hot entry once the owner has answered (also when
// the call failed: the write may have been applied).
func (e *Engine) forward(ctx context.Context, b *batch, ops []Op, done func(int, Result)) {
	var tokens []hotcache.Token
	var hot []bool
	timeout := e.cfg.ForwardTimeout
	if len(b.idx) > 0 {
		timeout = 0
		for _, i := range b.idx {
			timeout = max(timeout, e.timeout(ops[i].Timeout))
		}
	}
	if e.cfg.Hot != nil {
		tokens, hot = make([]hotcache.Token, len(b.idx)), make([]bool, len(b.idx))
		for j, i := range b.idx {
			if ops[i].Kind == Get {
				tokens[j], hot[j] = e.cfg.Hot.Admit(b.rks[j], b.owner)
			}
		}
		defer func() {
			for j, i := range b.idx {
				if ops[i].Kind.write() {
					e.cfg.Hot.Invalidate(b.rks[j])
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b.req.From = e.cfg.Self
	b.req.Hlc = e.Versions()
	b.req.TableVersion = b.version // the owner follows it first (Peer.Forward)
	e.stats.forwards.Add(uint64(len(b.idx)))
	resp, err := e.cfg.Peers.Forward(ctx, b.owner, b.req)
	if err == nil {
		if cerr := e.ObserveClock(resp.Hlc); cerr != nil {
			e.log.Warn("owner's clock is too far ahead; its answer is used, its clock is not", "owner", b.owner.Name, "err", cerr)
		}
		if len(resp.Results) != len(b.idx) {
			err = fmt.Errorf("owner %s returned %d results for %d ops", b.owner.Name, len(resp.Results), len(b.idx))
		}
	}
	if err != nil {
		e.stats.forwardErrors.Add(uint64(len(b.idx)))
		for _, i := range b.idx {
			done(i, Result{Err: err})
		}
		return
	}
	for j, i := range b.idx {
		r := ResultFromProto(resp.Results[j])
		if hot != nil && hot[j] && r.Err == nil {
			e.cfg.Hot.Fill(b.rks[j], tokens[j], r.Value, r.Found)
		}
		done(i, r)
	}
}

// ObserveClock moves the node's clock past a peer's version, unless it is
// too far ahead of the wall clock (hlc.ErrTooFarAhead).
func (e *Engine) ObserveClock(v uint64) error { return e.cfg.Versions.Observe(v) }

// Versions returns a fresh version of the node's clock for peers, capped
// so that they accept it while the clock runs ahead (hlc.Clock.Send).
func (e *Engine) Versions() uint64 { return e.cfg.Versions.Send() }
