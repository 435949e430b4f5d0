package codec

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// frames returns a message of each type unmarshalFrame decodes, empty, to
// decode into.
func frames() []vtMessage {
	return []vtMessage{&pb.PipelineRequest{}, &pb.ForwardStreamRequest{}, &pb.PipelineResponse{}, &pb.ForwardStreamResponse{}}
}

// agree fails t unless b decodes through unmarshalFrame as through the
// generated UnmarshalVT, for each frame type.
func agree(t *testing.T, b []byte) {
	t.Helper()
	for _, m := range frames() {
		want := proto.Clone(m.(proto.Message)).(vtMessage)
		errWant := want.UnmarshalVT(b)
		ok, err := unmarshalFrame(m, b)
		if !ok {
			t.Fatalf("%T is not decoded as a frame", m)
		}
		if (err == nil) != (errWant == nil) {
			t.Fatalf("%T from % x: blocks %v, UnmarshalVT %v", m, b, err, errWant)
		}
		if err == nil && !proto.Equal(m.(proto.Message), want.(proto.Message)) {
			t.Fatalf("%T from % x: blocks decode %v, UnmarshalVT %v", m, b, m, want)
		}
	}
}

// oddFrame is a PipelineRequest whose ops make the pre-set blocks go
// unused: an op without a kind, one whose kind changes from Set to Get,
// a Get field before a Set (the Set wins), fields repeated, and unknown
// fields.
func oddFrame() []byte {
	get := func(ns, key string) []byte {
		b, _ := proto.Marshal(&pb.GetRequest{Namespace: ns, Key: key})
		return b
	}
	set, _ := proto.Marshal(&pb.SetRequest{Namespace: "n", Key: "k", Value: []byte("v"), Ttl: durationpb.New(time.Second)})
	timeout, _ := proto.Marshal(durationpb.New(time.Millisecond))
	op := func(fields ...[]byte) []byte {
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	}
	field := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	id := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)
	ops := [][]byte{
		op(id), // no kind
		op(id, field(3, set), field(2, get("a", "b"))),     // Set then Get: a Get
		op(field(2, get("a", "b")), field(3, set)),         // Get then Set: a Set
		op(field(2, get("a", "")), field(2, get("", "b"))), // one Get, merged
		op(field(5, timeout), field(99, []byte("?")), field(2, get("x", "y")), field(5, timeout)),
		op(field(4, get("d", "e"))), // a Delete: no block
	}
	var b []byte
	for _, o := range ops {
		b = append(b, field(1, o)...)
	}
	return append(b, field(42, []byte("unknown"))...)
}

func TestBlocks_DecodeAsUnmarshalVT(t *testing.T) {
	std, _ := proto.Marshal(frame(false))
	big, _ := proto.Marshal(frame(true))
	results, _ := proto.Marshal(&pb.PipelineResponse{FramesRead: 1, Results: []*pb.PipelineResult{
		{Id: 1, Found: true, Value: []byte("v")}, {Id: 2, ErrorCode: 5, ErrorMessage: "gone", RetryDelay: durationpb.New(time.Second)}, {},
	}})
	fwd, _ := proto.Marshal(&pb.ForwardStreamRequest{From: "n1", Hlc: 9, Ops: frame(false).Ops})
	for i, b := range [][]byte{std, big, results, fwd, oddFrame(), nil, {}} {
		t.Run(fmt.Sprint(i), func(t *testing.T) { agree(t, b) })
	}
}

func TestBlocks_AFrameDecodesWithAFewAllocations(t *testing.T) {
	b := pipelineFrame(16)
	var m pb.PipelineRequest
	perVT := testing.AllocsPerRun(100, func() { m.Reset(); _ = m.UnmarshalVT(b) })
	perBlocks := testing.AllocsPerRun(100, func() { m.Reset(); _, _ = unmarshalFrame(&m, b) })
	// Each op's two strings, a tenth of them with a value, and the blocks.
	if perBlocks > 16*2+2+6 || perBlocks >= perVT {
		t.Fatalf("16 ops: %v allocations, UnmarshalVT %v", perBlocks, perVT)
	}
}

// pipelineFrame is an encoded frame of n ops as the Go client sends them
// under the 90/10 load: Gets and one Set in ten, each with a timeout.
func pipelineFrame(n int) []byte {
	req := &pb.PipelineRequest{}
	for i := range n {
		op := &pb.PipelineOp{Id: uint64(i), Timeout: durationpb.New(5 * time.Second)}
		key := fmt.Sprintf("key-%d", i)
		if i%10 == 9 {
			op.Op = &pb.PipelineOp_Set{Set: &pb.SetRequest{Namespace: "bench", Key: key, Value: make([]byte, 100)}}
		} else {
			op.Op = &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: "bench", Key: key}}
		}
		req.Ops = append(req.Ops, op)
	}
	b, _ := proto.Marshal(req)
	return b
}

func BenchmarkUnmarshal_PipelineRequest8(b *testing.B) {
	frame := pipelineFrame(8)
	b.ReportAllocs()
	for b.Loop() {
		var m pb.PipelineRequest
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(frame)}, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzBlocks_DecodeAsUnmarshalVT: every frame type decodes any input as
// the generated UnmarshalVT does, errors included.
func FuzzBlocks_DecodeAsUnmarshalVT(f *testing.F) {
	std, _ := proto.Marshal(frame(false))
	f.Add(std)
	f.Add(oddFrame())
	f.Add(pipelineFrame(3))
	f.Fuzz(func(t *testing.T, b []byte) { agree(t, b) })
}

// A frame of many ops, most of them empty, after a Get and a Set: the
// blocks of the two kinds are not sized for the rest of the frame, so
// decoding costs about what UnmarshalVT's allocation per op costs.
func TestBlocks_AHugeFrameOfEmptyOpsCostsAboutWhatUnmarshalVTCosts(t *testing.T) {
	head := pipelineFrame(10) // nine Gets and a Set
	empty := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), nil)
	b := append([]byte(nil), head...)
	for range 100000 {
		b = append(b, empty...)
	}
	bytesOf := func(decode func(m *pb.PipelineRequest)) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var m pb.PipelineRequest
		decode(&m)
		runtime.ReadMemStats(&after)
		if len(m.Ops) != 100010 {
			t.Fatalf("%d ops decoded, want 100010", len(m.Ops))
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	vt := bytesOf(func(m *pb.PipelineRequest) { _ = m.UnmarshalVT(b) })
	blocks := bytesOf(func(m *pb.PipelineRequest) { _, _ = unmarshalFrame(m, b) })
	if blocks > vt*3/2 {
		t.Fatalf("blocks allocated %d KiB to decode the frame, UnmarshalVT %d KiB", blocks>>10, vt>>10)
	}
}
