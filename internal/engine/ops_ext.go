package engine

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Kinds of Op that the Redis protocol door needs beyond Get, Set, Delete
// and Lease (docs/resp.md). They travel to a key's owner as PipelineOps
// like the others and run there under the namespace's write mode; see
// pkg/strategy/ttl.go for what a lifetime means in each.
const (
	// TTL asks for the key's remaining lifetime: Result.Found says whether
	// it exists, Result.TTL how long it lives (0: forever).
	TTL Kind = iota + 16
	// Expire gives the key's entry a lifetime of Op.TTL from now (0: none).
	// Result.Found says whether the key existed; with ReturnOld,
	// Result.Value is its value.
	Expire
	// GetDel deletes the key and returns what it held (Result.Value,
	// Result.Found); with MemoryOnly its existence is judged without a
	// database load and no value is promised.
	GetDel
	// SetIf is a Set with Flags NX, XX and KeepTTL; Result.Found says
	// whether the key existed before, and with ReturnOld Result.Value is
	// its previous value.
	SetIf
)

// Flags are options of the kinds above.
type Flags uint8

// Flags.
const (
	// NX applies a SetIf only when the key does not exist.
	NX Flags = 1 << iota
	// XX applies a SetIf only when the key exists.
	XX
	// KeepTTL makes a SetIf keep the entry's remaining lifetime.
	KeepTTL
	// ReturnOld asks an Expire for the key's value, a SetIf for its
	// previous one.
	ReturnOld
	// MemoryOnly makes a GetDel judge existence by memory and the
	// write-behind journal, without loading.
	MemoryOnly
)

func (k Kind) writeExt() bool { return k == Expire || k == GetDel || k == SetIf }

// admitExt checks an op of the kinds above.
func admitExt(ns *strategy.Namespace, op *Op) error {
	switch op.Kind {
	case TTL, GetDel:
	case Expire:
		if op.TTL < 0 {
			return fmt.Errorf("%w: ttl is not a valid non-negative duration", strategy.ErrInvalidArgument)
		}
	case SetIf:
		if op.TTL < 0 {
			return fmt.Errorf("%w: ttl is not a valid non-negative duration", strategy.ErrInvalidArgument)
		}
		if op.Flags&NX != 0 && op.Flags&XX != 0 {
			return fmt.Errorf("%w: NX and XX exclude each other", strategy.ErrInvalidArgument)
		}
		return ns.ValidateValue(op.Value)
	default:
		return ErrNoOp
	}
	return nil
}

// serveExt runs an op of the kinds above on its owner: at once when it
// only touches memory, else through spawn.
func (e *Engine) serveExt(ctx context.Context, ns *strategy.Namespace, i int, op *Op, done func(int, Result), spawn func(func())) {
	var run func(context.Context) Result
	waits := ns.ReadsWait()
	switch op.Kind {
	case TTL:
		run = func(ctx context.Context) Result {
			ttl, found, err := ns.TTL(ctx, op.Key)
			return Result{Found: found, TTL: ttl, Err: err}
		}
	case Expire:
		run = func(ctx context.Context) Result {
			v, found, err := ns.Expire(ctx, op.Key, op.TTL)
			if op.Flags&ReturnOld == 0 {
				v = nil
			}
			return Result{Value: v, Found: found, Err: err}
		}
	case GetDel:
		waits = waits || ns.WritesWait()
		run = func(ctx context.Context) Result {
			v, found, err := ns.GetDel(ctx, op.Key, op.Flags&MemoryOnly != 0)
			return Result{Value: v, Found: found, Err: err}
		}
	case SetIf:
		waits = waits || ns.WritesWait()
		run = func(ctx context.Context) Result {
			opts := strategy.SetOptions{NX: op.Flags&NX != 0, XX: op.Flags&XX != 0, KeepTTL: op.Flags&KeepTTL != 0}
			v, found, err := ns.SetIf(ctx, op.Key, op.Value, op.TTL, opts)
			if op.Flags&ReturnOld == 0 {
				v = nil
			}
			return Result{Value: v, Found: found, Err: err}
		}
	default:
		done(i, Result{Err: ErrNoOp})
		return
	}
	if !waits {
		done(i, run(ctx))
		return
	}
	e.wait(ctx, i, op, done, spawn, run)
}

// opFromProtoExt fills op from a PipelineOp of the kinds above and reports
// whether o carries one.
func opFromProtoExt(o *pb.PipelineOp, op *Op) bool {
	ttl := func(d *durationpb.Duration) {
		if d != nil {
			op.TTL = d.AsDuration()
			if d.CheckValid() != nil || op.TTL < 0 {
				op.TTL = -1 // refused in admitExt
			}
		}
	}
	switch x := o.Op.(type) {
	case *pb.PipelineOp_Ttl:
		op.Kind, op.Namespace, op.Key = TTL, x.Ttl.GetNamespace(), x.Ttl.GetKey()
	case *pb.PipelineOp_Expire:
		op.Kind, op.Namespace, op.Key = Expire, x.Expire.GetNamespace(), x.Expire.GetKey()
		ttl(x.Expire.Ttl)
		if x.Expire.ReturnValue {
			op.Flags |= ReturnOld
		}
	case *pb.PipelineOp_GetDel:
		op.Kind, op.Namespace, op.Key = GetDel, x.GetDel.GetNamespace(), x.GetDel.GetKey()
		if x.GetDel.MemoryOnly {
			op.Flags |= MemoryOnly
		}
	case *pb.PipelineOp_SetIf:
		s := x.SetIf.GetSet()
		op.Kind, op.Namespace, op.Key, op.Value = SetIf, s.GetNamespace(), s.GetKey(), s.GetValue()
		ttl(s.GetTtl())
		for _, f := range []struct {
			on   bool
			flag Flags
		}{{x.SetIf.Nx, NX}, {x.SetIf.Xx, XX}, {x.SetIf.KeepTtl, KeepTTL}, {x.SetIf.ReturnOld, ReturnOld}} {
			if f.on {
				op.Flags |= f.flag
			}
		}
	default:
		return false
	}
	return true
}

// protoExt sets p's op to op, of the kinds above.
func (op Op) protoExt(p *pb.PipelineOp) {
	var ttl *durationpb.Duration
	if op.TTL > 0 {
		ttl = durationpb.New(op.TTL)
	}
	switch op.Kind {
	case TTL:
		p.Op = &pb.PipelineOp_Ttl{Ttl: &pb.TtlRequest{Namespace: op.Namespace, Key: op.Key}}
	case Expire:
		p.Op = &pb.PipelineOp_Expire{Expire: &pb.ExpireRequest{Namespace: op.Namespace, Key: op.Key, Ttl: ttl, ReturnValue: op.Flags&ReturnOld != 0}}
	case GetDel:
		p.Op = &pb.PipelineOp_GetDel{GetDel: &pb.GetDelRequest{Namespace: op.Namespace, Key: op.Key, MemoryOnly: op.Flags&MemoryOnly != 0}}
	case SetIf:
		p.Op = &pb.PipelineOp_SetIf{SetIf: &pb.SetIfRequest{
			Set: &pb.SetRequest{Namespace: op.Namespace, Key: op.Key, Value: op.Value, Ttl: ttl},
			Nx:  op.Flags&NX != 0, Xx: op.Flags&XX != 0, KeepTtl: op.Flags&KeepTTL != 0, ReturnOld: op.Flags&ReturnOld != 0,
		}}
	}
}
