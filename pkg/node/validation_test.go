package node

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

const (
	testMaxKey   = 64
	testMaxValue = 256
)

// singleNode starts one node with a pure-cache namespace "c".
func singleNode(t testing.TB) *Node {
	t.Helper()
	n, err := New(Config{
		Name: "solo", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []NamespaceSpec{{Policy: strategy.Policy{Name: "c", TTL: time.Minute, MaxKeyBytes: testMaxKey, MaxValueBytes: testMaxValue}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	return n
}

func TestCache_BadInputGetsClearStatus(t *testing.T) {
	n := singleNode(t)
	s := n.CacheServer()
	ctx := context.Background()
	long := strings.Repeat("k", testMaxKey+1)
	cases := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"empty key", func() error { _, err := s.Get(ctx, &pb.GetRequest{Namespace: "c"}); return err }, codes.InvalidArgument, "key is empty"},
		{"key over limit", func() error { _, err := s.Get(ctx, &pb.GetRequest{Namespace: "c", Key: long}); return err }, codes.InvalidArgument, "at most 64"},
		{"invalid utf-8", func() error { _, err := s.Get(ctx, &pb.GetRequest{Namespace: "c", Key: "a\xffb"}); return err }, codes.InvalidArgument, "UTF-8"},
		{"value over limit", func() error {
			_, err := s.Set(ctx, &pb.SetRequest{Namespace: "c", Key: "k", Value: make([]byte, testMaxValue+1)})
			return err
		}, codes.InvalidArgument, "at most 256"},
		{"negative ttl", func() error {
			_, err := s.Set(ctx, &pb.SetRequest{Namespace: "c", Key: "k", Value: []byte("v"), Ttl: durationpb.New(-time.Second)})
			return err
		}, codes.InvalidArgument, "ttl"},
		{"unknown namespace", func() error { _, err := s.Get(ctx, &pb.GetRequest{Namespace: "nope", Key: "k"}); return err }, codes.NotFound, `unknown namespace "nope"; configured namespaces: [c]`},
		{"empty namespace", func() error { _, err := s.Delete(ctx, &pb.DeleteRequest{Key: "k"}); return err }, codes.NotFound, "the request names none"},
		{"too many keys", func() error {
			_, err := s.GetMany(ctx, &pb.GetManyRequest{Namespace: "c", Keys: make([]string, DefaultMaxBatchKeys+1)})
			return err
		}, codes.InvalidArgument, "at most 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// Nothing was written by the rejected Sets.
	if got, err := s.Get(ctx, &pb.GetRequest{Namespace: "c", Key: "k"}); err != nil || got.Found {
		t.Fatalf("rejected Set left an entry: %v %v", got, err)
	}
	// A bad key inside a batch fails that key only.
	resp, err := s.GetMany(ctx, &pb.GetManyRequest{Namespace: "c", Keys: []string{"", "ok"}})
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.Results[0].ErrorCode) != codes.InvalidArgument || resp.Results[1].ErrorCode != 0 {
		t.Fatalf("batch results %v", resp.Results)
	}
}

// FuzzCache_RequestValidation sends arbitrary requests to the handlers: they
// never panic, reject only with INVALID_ARGUMENT or NOT_FOUND, and an
// accepted Set is read back unchanged.
func FuzzCache_RequestValidation(f *testing.F) {
	n := singleNode(f)
	s := n.CacheServer()
	f.Add("c", "key", []byte("value"), int64(0))
	f.Add("c", "", []byte{}, int64(-1))
	f.Add("x", "\xff", []byte{0}, int64(1e9))
	f.Add("c", strings.Repeat("é", 40), make([]byte, 300), int64(5))
	f.Fuzz(func(t *testing.T, ns, key string, value []byte, ttlNanos int64) {
		ctx := context.Background()
		_, err := s.Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: value, Ttl: durationpb.New(time.Duration(ttlNanos))})
		valid := ns == "c" && key != "" && len(key) <= testMaxKey && utf8.ValidString(key) && len(value) <= testMaxValue && ttlNanos >= 0
		switch code := status.Code(err); {
		case valid && err != nil:
			t.Fatalf("valid Set(%q, %q, %d bytes, %d) rejected: %v", ns, key, len(value), ttlNanos, err)
		case !valid && code != codes.InvalidArgument && code != codes.NotFound:
			t.Fatalf("invalid Set(%q, %q, %d bytes, %d): got %v", ns, key, len(value), ttlNanos, err)
		}
		got, err := s.Get(ctx, &pb.GetRequest{Namespace: ns, Key: key})
		// A tiny positive TTL may expire before the read: only check longer ones.
		if valid && (ttlNanos == 0 || ttlNanos >= int64(time.Minute)) {
			if err != nil || !got.Found || string(got.Value) != string(value) {
				t.Fatalf("read back %q: %v %v", key, got, err)
			}
		} else if err != nil && status.Code(err) != codes.InvalidArgument && status.Code(err) != codes.NotFound {
			t.Fatalf("Get(%q, %q): %v", ns, key, err)
		}
	})
}

func TestNode_AdvertisesARoutableGRPCAddress(t *testing.T) {
	for _, tc := range []struct{ explicit, lis string }{
		{"10.1.2.3:7101", "0.0.0.0:7101"},
		{"", "127.0.0.1:7101"},
	} {
		a, _ := net.ResolveTCPAddr("tcp", tc.lis)
		got, err := advertiseAddr(tc.explicit, "", a)
		want := tc.explicit
		if want == "" {
			want = tc.lis
		}
		if err != nil || got != want {
			t.Errorf("advertiseAddr(%q, %s) = %q, %v; want %q", tc.explicit, tc.lis, got, err, want)
		}
	}
	// An unspecified listen host is never published as is.
	a, _ := net.ResolveTCPAddr("tcp", "0.0.0.0:7101")
	if got, err := advertiseAddr("", "", a); err == nil && strings.HasPrefix(got, "0.0.0.0") {
		t.Fatalf("published %q", got)
	}
	if got, _ := advertiseAddr("", "10.0.0.7:7201", a); got != "10.0.0.7:7101" {
		t.Fatalf("with a gossip advertise address, published %q", got)
	}
	if _, err := advertiseAddr("no-port", "", a); err == nil {
		t.Fatal("accepted an advertise address without a port")
	}
}

// rawCodec sends pre-encoded bytes, so a test can put on the wire what a
// Go client's codec refuses to encode (a string that is not UTF-8), and
// decodes answers as protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// wireString encodes field num as a length-delimited field.
func wireString(num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
}

// Issue 13, break 4: a key that is not valid UTF-8 reached callers as
// INTERNAL ("failed to unmarshal"); it is INVALID_ARGUMENT, naming the key.
func TestCache_InvalidUTF8OnTheWireIsInvalidArgument(t *testing.T) {
	n := singleNode(t)
	cc, err := grpc.NewClient("passthrough:///"+n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := context.Background()
	bad := append(wireString(1, "c"), wireString(2, "a\xffb")...)
	var resp pb.GetResponse
	err = cc.Invoke(ctx, pb.Cache_Get_FullMethodName, bad, &resp, grpc.ForceCodecV2(rawCodec{}))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Get with a non-UTF-8 key = %v, want INVALID_ARGUMENT about UTF-8", err)
	}
	// In a batch, the key fails alone and the answer still encodes.
	many := append(append(wireString(1, "c"), wireString(2, "ok")...), wireString(2, "\xff")...)
	var got pb.GetManyResponse
	if err := cc.Invoke(ctx, pb.Cache_GetMany_FullMethodName, many, &got, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatalf("GetMany with one non-UTF-8 key: %v", err)
	}
	if len(got.Results) != 2 || got.Results[0].ErrorCode != 0 || codes.Code(got.Results[1].ErrorCode) != codes.InvalidArgument {
		t.Fatalf("GetMany results %v, want the second key alone INVALID_ARGUMENT", got.Results)
	}
	// A truncated message is still gRPC's own error.
	if err := cc.Invoke(ctx, pb.Cache_Get_FullMethodName, []byte{0x12, 0x05, 'a'}, &resp, grpc.ForceCodecV2(rawCodec{})); status.Code(err) == codes.OK || status.Code(err) == codes.InvalidArgument {
		t.Fatalf("a truncated request = %v, want gRPC's decode error", err)
	}
}
