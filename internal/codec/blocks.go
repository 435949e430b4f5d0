package codec

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The frames of the hot path (a Pipeline or ForwardStream request and its
// response) are decoded with the elements of their repeated field
// allocated together, a block per frame, rather than one by one.
//
// vtproto's UnmarshalVT allocates each op of a frame, its oneof wrapper,
// its request and its timeout separately: four allocations per Get before
// its two strings, of about fifteen a node made per op under the 50-caller
// load of BENCHMARKS.md, where the garbage collector and the allocator
// took a sixth of a node's CPU.
//
// The decoding itself stays vtproto's: these functions find the fields of
// the frame, pre-set what vtproto's code would otherwise allocate (an op's
// oneof wrapper and request, its timeout) to an element of a block, and
// call the generated UnmarshalVT on each field, which fills the pre-set
// element as it would a new one (vtproto decodes into an existing oneof
// wrapper or message field of the same type). Decoding a message field
// by field merges the fields as decoding them at once does, so the result
// is UnmarshalVT's (FuzzBlocks_DecodeAsUnmarshalVT).

// unmarshalFrame decodes b into m, which has been reset, as
// m.UnmarshalVT(b) does; it reports false, having decoded nothing, for
// messages that are not frames.
func unmarshalFrame(m vtMessage, b []byte) (bool, error) {
	switch m := m.(type) {
	case *pb.PipelineRequest:
		return true, eachField(b, 1, m.UnmarshalVT, opsBlock(&m.Ops))
	case *pb.ForwardStreamRequest:
		return true, eachField(b, 3, m.UnmarshalVT, opsBlock(&m.Ops))
	case *pb.PipelineResponse:
		return true, eachField(b, 1, m.UnmarshalVT, resultsBlock(&m.Results))
	case *pb.ForwardStreamResponse:
		return true, eachField(b, 2, m.UnmarshalVT, resultsBlock(&m.Results))
	}
	return false, nil
}

// eachField decodes the message b: each occurrence of field num (a
// repeated message) through the function elems returns, given how many
// there are, and every other field through other. When b's fields do not
// parse, or field num comes with another wire type, it decodes b whole
// through other instead, for the generated code's error.
func eachField(b []byte, num protowire.Number, other func([]byte) error, elems func(n int) func(v []byte) error) error {
	n := 0
	for rest := b; len(rest) > 0; {
		fn, typ, l := protowire.ConsumeField(rest)
		if l < 0 || (fn == num && typ != protowire.BytesType) {
			return other(b)
		}
		if fn == num {
			n++
		}
		rest = rest[l:]
	}
	if n == 0 {
		return other(b)
	}
	elem := elems(n)
	for len(b) > 0 {
		fn, _, l := protowire.ConsumeField(b)
		field := b[:l]
		b = b[l:]
		if fn != num {
			if err := other(field); err != nil {
				return err
			}
			continue
		}
		_, tl := protowire.ConsumeVarint(field)
		v, _ := protowire.ConsumeBytes(field[tl:])
		if err := elem(v); err != nil {
			return err
		}
	}
	return nil
}

// opsBlock returns, for eachField, the decoder of n ops appended to *ops
// from blocks.
func opsBlock(ops *[]*pb.PipelineOp) func(n int) func([]byte) error {
	return func(n int) func([]byte) error {
		var k opBlock
		*ops = make([]*pb.PipelineOp, 0, n)
		return func(v []byte) error {
			op := k.next(v, n-len(*ops))
			*ops = append(*ops, op)
			return op.UnmarshalVT(v)
		}
	}
}

// resultsBlock returns, for eachField, the decoder of n results appended
// to *rs from blocks.
func resultsBlock(rs *[]*pb.PipelineResult) func(n int) func([]byte) error {
	return func(n int) func([]byte) error {
		var block []pb.PipelineResult
		*rs = make([]*pb.PipelineResult, 0, n)
		return func(v []byte) error {
			r := take(&block, n-len(*rs))
			*rs = append(*rs, r)
			return r.UnmarshalVT(v)
		}
	}
}

// opBlock hands out the ops of one frame, with the wrapper and request of
// the two kinds that make up nearly every frame (Get and Set) and their
// timeouts, a kind's block allocated when an op of its kind comes and the
// last block is used up, sized for the ops left (take).
type opBlock struct {
	ops      []pb.PipelineOp
	gets     []getOp
	sets     []setOp
	timeouts []durationpb.Duration
}

type getOp struct {
	wrap pb.PipelineOp_Get
	req  pb.GetRequest
}

type setOp struct {
	wrap pb.PipelineOp_Set
	req  pb.SetRequest
}

// Field numbers of PipelineOp that next pre-sets.
const (
	opGet     = 2
	opSet     = 3
	opTimeout = 5
)

// next returns the next op of the frame, for the encoded op v, with what
// vtproto would allocate for v pre-set from the blocks; left is how many
// ops of the frame are left, this one included.
func (k *opBlock) next(v []byte, left int) *pb.PipelineOp {
	op := take(&k.ops, left)
	first, timeout := opFields(v)
	switch first {
	case opGet:
		g := take(&k.gets, left)
		g.wrap.Get = &g.req
		op.Op = &g.wrap
	case opSet:
		s := take(&k.sets, left)
		s.wrap.Set = &s.req
		op.Op = &s.wrap
	}
	if timeout {
		op.Timeout = take(&k.timeouts, left)
	}
	return op
}

// maxBlock bounds a block: a frame of many ops (a peer's forwarded batch,
// or a hostile one of millions of empty ops, which the handler refuses only
// once decoded) gets its elements in blocks of this many, so a block of a
// kind sized for the rest of such a frame, and mostly unused, cannot
// multiply what it costs to decode.
const maxBlock = 128

// take returns the next element of *block, allocating left of them (at
// most maxBlock) when it has none.
func take[T any](block *[]T, left int) *T {
	if len(*block) == 0 {
		*block = make([]T, min(left, maxBlock))
	}
	e := &(*block)[0]
	*block = (*block)[1:]
	return e
}

// opFields returns the number of the first length-delimited field of the
// encoded op v other than its timeout (its oneof's member, in an op well
// formed; 0 when there is none), and whether it carries a timeout. A
// pre-set wrapper is filled only when that field is its kind; vtproto
// replaces it on any other.
func opFields(v []byte) (first protowire.Number, timeout bool) {
	for len(v) > 0 {
		fn, typ, l := protowire.ConsumeField(v)
		if l < 0 {
			return first, timeout
		}
		v = v[l:]
		if typ != protowire.BytesType {
			continue
		}
		switch fn {
		case opTimeout:
			timeout = true
		default:
			if first == 0 {
				first = fn
			}
		}
	}
	return first, timeout
}
