// Package codec is the gRPC codec of ringcache's own connections: the
// node's server (through service.Codec), its peer pool and pkg/client.
// It encodes protobuf exactly as grpc-go's codec does, but through the
// code protoc-gen-go-vtproto generates for ringcache's messages
// (SizeVT, MarshalToSizedBufferVT, UnmarshalVT: proto/ringcache/v1/
// *_vtproto.pb.go) instead of protobuf's reflection. Messages without that
// code (health checks, reflection, another package's) go to grpc-go's own
// codec.
//
// Measured under the 50-caller load of BENCHMARKS.md, reflection-based
// encoding and decoding took about a fifth of a node's CPU and a tenth of
// the Go client's.
//
// Unlike proto.Unmarshal, UnmarshalVT keeps a string field that is not
// valid UTF-8 as it came (service.Codec did so on purpose already, so the
// handler names the bad field), and fails on a known field sent with
// another wire type, where proto.Unmarshal keeps it as an unknown field;
// service.Codec then decodes the message again as before.
package codec

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Name is the codec's name: it is protobuf, as grpc-go's "proto".
const Name = grpcproto.Name

// vtMessage is a message with vtproto's generated code.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT(dAtA []byte) (int, error)
	UnmarshalVT(dAtA []byte) error
	Reset()
}

// Codec implements encoding.CodecV2. Install it with grpc.ForceCodecV2 (a
// client's call option) or grpc.ForceServerCodecV2.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

func base() encoding.CodecV2 { return encoding.GetCodecV2(grpcproto.Name) }

// Name implements encoding.CodecV2.
func (Codec) Name() string { return Name }

// Marshal implements encoding.CodecV2: into a buffer of the message's size,
// taken from gRPC's pool when it is large enough to be pooled, as grpc-go's
// codec does.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return base().Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT(*buf); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal implements encoding.CodecV2. The message is reset first, as
// proto.Unmarshal does; what it decodes is copied out of data, which gRPC
// reuses once this returns.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok {
		return base().Unmarshal(data, v)
	}
	m.Reset()
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if ok, err := unmarshalFrame(m, buf.ReadOnlyData()); ok {
		return err
	}
	return m.UnmarshalVT(buf.ReadOnlyData())
}
