package engine

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/reason"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Kind is what an Op does.
type Kind uint8

// Kinds of Op.
const (
	Get Kind = iota + 1
	Set
	Delete
	// Lease is a Get for cache-aside loading (strategy.Namespace.Lease).
	Lease
)

// write reports whether ops of kind k change data.
func (k Kind) write() bool { return k == Set || k == Delete || k.writeExt() }

// Op is one Get, Set, Delete or Lease, whichever door it came in by.
type Op struct {
	Kind      Kind
	Namespace string
	Key       string
	// Value and TTL (≤ 0: the namespace's) of a Set.
	Value []byte
	TTL   time.Duration
	// LeaseToken makes a Set apply only while that lease is valid.
	LeaseToken uint64
	// Timeout bounds the op if it must wait (a load, a forward, a database
	// write); 0 means Config.ForwardTimeout, which also caps it.
	Timeout time.Duration
	// Flags are the options of the kinds in ops_ext.go.
	Flags Flags
	// Method is the door's name for the command the op came in, for the
	// audit log, when the batch mixes commands (a RESP pipeline); empty
	// means the Caller's.
	Method string
}

// Result is an Op's outcome. Err, when set, maps to a gRPC status with
// Status; the other fields are then unset.
type Result struct {
	Value      []byte
	Found      bool
	LeaseToken uint64
	Wait       bool
	// TTL is a TTL op's remaining lifetime; 0 when the entry never
	// expires.
	TTL time.Duration
	Err error
}

// Caller is who sends a batch of ops, and through which door.
type Caller struct {
	// Principal is who the door identified; the zero value is anonymous.
	Principal auth.Principal
	// Remote is the caller's address, Method the door's name for the call
	// (a gRPC method, a RESP command), for the audit log.
	Remote, Method string
	// Forwarded marks ops a peer forwarded: they are served here as the
	// owner, whatever this node's ring says (but see TableVersion), and
	// were authorized by the node that received them first (the door
	// checked the peer role).
	Forwarded bool
	// TableVersion is the version of the table a forwarding peer routed
	// the ops by (0: not known). When this node routes by a newer one, a
	// forwarded op of a partition another member owns in it goes on to
	// that member (Execute).
	TableVersion uint64
}

// role returns the role an op of kind k needs.
func (k Kind) role() auth.Role {
	if k.write() {
		return auth.RoleWrite
	}
	return auth.RoleRead
}

// OpFromProto returns the Op a Pipeline or Forward op carries, and false
// when it carries none.
func OpFromProto(o *pb.PipelineOp) (Op, bool) {
	op := Op{Timeout: o.GetTimeout().AsDuration()}
	switch x := o.Op.(type) {
	case *pb.PipelineOp_Get:
		op.Kind, op.Namespace, op.Key = Get, x.Get.GetNamespace(), x.Get.GetKey()
	case *pb.PipelineOp_Set:
		s := x.Set
		op.Kind, op.Namespace, op.Key, op.Value, op.LeaseToken = Set, s.GetNamespace(), s.GetKey(), s.GetValue(), s.GetLeaseToken()
		if s.Ttl != nil {
			op.TTL = s.Ttl.AsDuration()
			if s.Ttl.CheckValid() != nil || op.TTL < 0 {
				op.TTL = -1 // checked in admit: not a valid non-negative duration
			}
		}
	case *pb.PipelineOp_Delete:
		op.Kind, op.Namespace, op.Key = Delete, x.Delete.GetNamespace(), x.Delete.GetKey()
	case *pb.PipelineOp_Lease:
		op.Kind, op.Namespace, op.Key = Lease, x.Lease.GetNamespace(), x.Lease.GetKey()
	default:
		if !opFromProtoExt(o, &op) {
			return Op{}, false
		}
	}
	if op.Timeout < 0 {
		op.Timeout = 0
	}
	return op, true
}

// Proto returns op as a Pipeline/Forward op with the given id.
func (op Op) Proto(id uint64) *pb.PipelineOp {
	p := &pb.PipelineOp{Id: id}
	if op.Timeout > 0 {
		p.Timeout = durationpb.New(op.Timeout)
	}
	switch op.Kind {
	case Get:
		p.Op = &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: op.Namespace, Key: op.Key}}
	case Set:
		s := &pb.SetRequest{Namespace: op.Namespace, Key: op.Key, Value: op.Value, LeaseToken: op.LeaseToken}
		if op.TTL > 0 {
			s.Ttl = durationpb.New(op.TTL)
		}
		p.Op = &pb.PipelineOp_Set{Set: s}
	case Delete:
		p.Op = &pb.PipelineOp_Delete{Delete: &pb.DeleteRequest{Namespace: op.Namespace, Key: op.Key}}
	case Lease:
		p.Op = &pb.PipelineOp_Lease{Lease: &pb.LeaseRequest{Namespace: op.Namespace, Key: op.Key}}
	default:
		op.protoExt(p)
	}
	return p
}

// Proto returns r as the result of the op with the given id.
func (r Result) Proto(id uint64) *pb.PipelineResult {
	p := new(pb.PipelineResult)
	r.ProtoTo(id, p)
	return p
}

// ProtoTo sets the zero result p to r as the result of the op with the
// given id, for a caller that allocates many results at once.
func (r Result) ProtoTo(id uint64, p *pb.PipelineResult) {
	p.Id = id
	if r.Err != nil {
		st := Status(r.Err)
		p.ErrorCode, p.ErrorMessage, p.ErrorReason = int32(st.Code()), st.Message(), reason.Of(st.Err())
		if d := reason.RetryDelay(st.Err()); d > 0 {
			p.RetryDelay = durationpb.New(d)
		}
		return
	}
	p.Found, p.Value, p.LeaseToken, p.Wait = r.Found, r.Value, r.LeaseToken, r.Wait
	if r.TTL > 0 {
		p.Ttl = durationpb.New(r.TTL)
	}
}

// ResultFromProto returns the Result a Pipeline/Forward result carries; a
// failed op's error is its status as the owner sent it.
func ResultFromProto(p *pb.PipelineResult) Result {
	if p.GetErrorCode() != 0 {
		return Result{Err: ErrorFromFields(codes.Code(p.ErrorCode), p.ErrorMessage, p.ErrorReason, p.GetRetryDelay().AsDuration())}
	}
	return Result{Value: p.GetValue(), Found: p.GetFound(), LeaseToken: p.GetLeaseToken(), Wait: p.GetWait(), TTL: p.GetTtl().AsDuration()}
}

// ErrorFromFields rebuilds the status error of a per-op result.
func ErrorFromFields(code codes.Code, msg, why string, retry time.Duration) error {
	if why == "" {
		return status.Error(code, msg)
	}
	return reason.Status(code, why, msg, retry).Err()
}
