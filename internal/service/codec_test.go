package service

import (
	"testing"
	"unicode/utf8"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// FuzzUnmarshalLenient decodes arbitrary bytes as a Pipeline frame: the
// lenient decoder never panics, agrees with proto.Unmarshal (unknown
// fields discarded) whenever that succeeds, and when proto.Unmarshal fails but it succeeds, some string is
// not valid UTF-8 (that is all it forgives).
func FuzzUnmarshalLenient(f *testing.F) {
	good, _ := proto.Marshal(&pb.PipelineRequest{Ops: []*pb.PipelineOp{
		{Id: 7, Op: &pb.PipelineOp_Set{Set: &pb.SetRequest{Namespace: "c", Key: "k", Value: []byte("v"), Ttl: durationpb.New(5e9), LeaseToken: 3}}},
		{Id: 8, Op: &pb.PipelineOp_Get{Get: &pb.GetRequest{Namespace: "c", Key: "k"}}, Timeout: durationpb.New(1e9)},
	}})
	f.Add(good)
	f.Add([]byte{0x0a, 0x08, 0x12, 0x06, 0x0a, 0x01, 'c', 0x12, 0x01, 0xff})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		var strict, lenient pb.PipelineRequest
		serr := proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, &strict)
		lerr := unmarshalLenient(b, lenient.ProtoReflect(), 0)
		switch {
		case serr == nil && lerr != nil:
			t.Fatalf("strict decoding succeeds, lenient fails: %v", lerr)
		case serr == nil && !proto.Equal(&strict, &lenient):
			t.Fatalf("decodings differ:\nstrict  %v\nlenient %v", &strict, &lenient)
		case serr != nil && lerr == nil && allUTF8(&lenient):
			t.Fatalf("lenient decoding accepted what strict refuses (%v) with every string valid", serr)
		}
	})
}

func allUTF8(r *pb.PipelineRequest) bool {
	for _, op := range r.Ops {
		for _, s := range []string{op.GetGet().GetNamespace(), op.GetGet().GetKey(), op.GetSet().GetNamespace(), op.GetSet().GetKey(),
			op.GetDelete().GetNamespace(), op.GetDelete().GetKey(), op.GetLease().GetNamespace(), op.GetLease().GetKey()} {
			if !utf8.ValidString(s) {
				return false
			}
		}
	}
	return true
}

// TestCodec_DecodesWhatVTProtoRefusesLeniently: a known field sent with
// another wire type (protobuf keeps it as an unknown field), and invalid
// UTF-8 in a message without vtproto's code, still decode.
func TestCodec_DecodesWhatVTProtoRefusesLeniently(t *testing.T) {
	good, err := proto.Marshal(&pb.GetRequest{Namespace: "c", Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// Field 1 (namespace, a string) sent as a varint, then the good fields.
	odd := append([]byte{0x08, 0x01}, good...)
	var got pb.GetRequest
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(odd)}, &got); err != nil || got.Key != "k" || got.Namespace != "c" {
		t.Fatalf("decoded %v, %v", &got, err)
	}
	bad := []byte{0x0a, 0x02, 'a', 0xff} // HealthCheckRequest.service, not UTF-8
	var h healthpb.HealthCheckRequest
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &h); err != nil || h.Service != "a\xff" {
		t.Fatalf("decoded %q, %v", h.Service, err)
	}
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x05, 'a'})}, &got); err == nil {
		t.Fatal("a truncated message decoded")
	}
}
