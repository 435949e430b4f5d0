package codec

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// frame is a Pipeline frame of every kind of op the hot path carries; big
// makes one value larger than gRPC's pooling threshold.
func frame(big bool) *pb.PipelineRequest {
	value := []byte("a hundred bytes or so")
	if big {
		value = bytes.Repeat([]byte{7}, 64<<10)
	}
	return &pb.PipelineRequest{Ops: []*pb.PipelineOp{
		{Id: 1, Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: "users", Key: "42"}}},
		{Id: 2, Op: &pb.PipelineOp_Set{Set: &pb.SetRequest{Namespace: "users", Key: "43", Value: value, Ttl: durationpb.New(90 * time.Second), LeaseToken: 9}}},
		{Id: 3, Op: &pb.PipelineOp_Delete{Delete: &pb.DeleteRequest{Namespace: "sessions", Key: "ü"}}},
		{Id: 1 << 40, Op: &pb.PipelineOp_Lease{Lease: &pb.LeaseRequest{Namespace: "users", Key: ""}}, Timeout: durationpb.New(time.Millisecond)},
	}}
}

func TestCodec_EncodesAndDecodesAsProtobuf(t *testing.T) {
	for _, big := range []bool{false, true} {
		want := frame(big)
		data, err := Codec{}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		wire := data.Materialize()
		data.Free()
		std, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(wire, std) {
			t.Errorf("big=%v: the codec's bytes differ from protobuf's", big)
		}
		var back pb.PipelineRequest
		if err := proto.Unmarshal(wire, &back); err != nil || !proto.Equal(&back, want) {
			t.Errorf("big=%v: protobuf decodes the codec's bytes as %v, %v", big, &back, err)
		}
		var got pb.PipelineRequest
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(std)}, &got); err != nil || !proto.Equal(&got, want) {
			t.Errorf("big=%v: the codec decodes protobuf's bytes as %v, %v", big, &got, err)
		}
	}
}

func TestCodec_DecodingResetsTheMessageAndCopiesOutOfTheBuffer(t *testing.T) {
	std, err := proto.Marshal(&pb.SetRequest{Key: "k", Value: []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	got := &pb.SetRequest{Namespace: "left over", Value: []byte("old"), LeaseToken: 5}
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(std)}, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, &pb.SetRequest{Key: "k", Value: []byte("v")}) {
		t.Fatalf("decoded %v: fields of the message before were kept", got)
	}
	clear(std) // gRPC reuses its buffer once Unmarshal returns
	if got.Key != "k" || string(got.Value) != "v" {
		t.Fatalf("decoded fields alias the buffer: %q %q", got.Key, got.Value)
	}
}

func TestCodec_MessagesWithoutGeneratedCodeGoToGRPCsCodec(t *testing.T) {
	want := &healthpb.HealthCheckRequest{Service: "ringcache.v1.Cache"}
	data, err := Codec{}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got healthpb.HealthCheckRequest
	if err := (Codec{}).Unmarshal(data, &got); err != nil || !proto.Equal(&got, want) {
		t.Fatalf("round trip gave %v, %v", &got, err)
	}
	if (Codec{}).Name() != encoding.GetCodecV2("proto").Name() {
		t.Fatalf("name %q: clients would send another content-subtype", (Codec{}).Name())
	}
}

func TestCodec_MalformedInputIsAnError(t *testing.T) {
	std, err := proto.Marshal(frame(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{std[:len(std)-3], {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, {0x0a, 0x05, 0x01}} {
		var got pb.PipelineRequest
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &got); err == nil {
			t.Errorf("% x decoded as %v", bad, &got)
		}
	}
}

// FuzzCodec_AgreesWithProtobuf: whatever both the codec and protobuf
// decode, they decode alike (unknown fields included).
func FuzzCodec_AgreesWithProtobuf(f *testing.F) {
	for _, big := range []bool{false, true} {
		b, _ := proto.Marshal(frame(big))
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ours, theirs pb.PipelineRequest
		errOurs := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &ours)
		errTheirs := proto.Unmarshal(b, &theirs)
		if errOurs == nil && errTheirs == nil && !proto.Equal(&ours, &theirs) {
			t.Fatalf("codec %v, protobuf %v", &ours, &theirs)
		}
		// Refusing what protobuf decodes is allowed only for what the
		// package doc says: a known field sent with another wire type.
		if errTheirs == nil && errOurs != nil && !strings.Contains(errOurs.Error(), "wrong wireType") {
			t.Fatalf("protobuf decodes %v, the codec fails: %v", &theirs, errOurs)
		}
	})
}
