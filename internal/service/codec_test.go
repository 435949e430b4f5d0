package service

import (
	"testing"
	"unicode/utf8"

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
