package service

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ringcache/ringcache/internal/codec"
)

// Codec is the server's protobuf codec: internal/codec's (vtproto's
// generated code, else grpc-go's), except that a request whose only fault
// is a string field that is not valid UTF-8 (proto3 strings must be) is
// still decoded, the bytes kept as they came, so the handler rejects it as
// INVALID_ARGUMENT naming the field ("key is not valid UTF-8") rather than
// gRPC failing the call as INTERNAL ("failed to unmarshal"). Such a string
// is never marshalled again: the engine checks keys before it forwards
// them, and answers never echo an invalid one. Install it with
// grpc.ForceServerCodecV2.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// fast is internal/codec's codec: vtproto's code for ringcache's messages.
var fast codec.Codec

// Name implements encoding.CodecV2.
func (Codec) Name() string { return grpcproto.Name }

// Marshal implements encoding.CodecV2. Invalidation messages come
// marshalled (Hub) and go as they are, in buffers of their own size rather
// than gRPC's pooled ones, which round up to the next size class: for a
// client that stops reading, gRPC queues up to 64 KiB of messages, and
// pooled buffers held three times as much memory.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(invalidations); ok {
		return mem.BufferSlice{mem.SliceBuffer(m)}, nil
	}
	return fast.Marshal(v)
}

// Unmarshal implements encoding.CodecV2. vtproto's code keeps invalid
// UTF-8 by itself; what it refuses (a known field sent with another wire
// type, which protobuf takes as an unknown field, or a message without
// vtproto's code whose fault is invalid UTF-8) is decoded again leniently.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	err := fast.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	proto.Reset(m)
	if lerr := unmarshalLenient(data.Materialize(), m.ProtoReflect(), 0); lerr != nil {
		return err // the message is broken otherwise: the codec's own error
	}
	return nil
}

// maxDepth bounds the nesting unmarshalLenient follows.
const maxDepth = 32

var errMalformed = errors.New("malformed protobuf")

// unmarshalLenient decodes b into m as proto.Unmarshal would, except that
// string fields keep invalid UTF-8. It handles the field kinds of
// ringcache's requests (and every scalar kind); unknown fields, and fields
// sent with another wire type, are dropped (the handlers read none).
func unmarshalLenient(b []byte, m protoreflect.Message, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested too deep", errMalformed)
	}
	fields := m.Descriptor().Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(n))
		}
		if !num.IsValid() {
			return fmt.Errorf("%w: field number %d", errMalformed, num)
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		packed := fd != nil && fd.IsList() && typ == protowire.BytesType && isScalar(fd.Kind())
		if fd == nil || fd.IsMap() || (typ != expectedType(fd.Kind()) && !packed) {
			// Unknown, or sent with another wire type: an unknown field,
			// as proto.Unmarshal takes it.
			k := protowire.ConsumeFieldValue(num, typ, b)
			if k < 0 {
				return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(k))
			}
			b = b[k:]
			continue
		}
		if packed {
			vals, n := protowire.ConsumeBytes(b) // a packed repeated scalar
			if n < 0 {
				return fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(n))
			}
			b = b[n:]
			for len(vals) > 0 {
				v, k, err := scalar(fd, wireTypeOf(fd.Kind()), vals)
				if err != nil {
					return err
				}
				vals = vals[k:]
				m.Mutable(fd).List().Append(v)
			}
			continue
		}
		var v protoreflect.Value
		switch fd.Kind() {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			raw, n := protowire.ConsumeBytes(b)
			if n < 0 || typ != protowire.BytesType {
				return fmt.Errorf("%w: field %s", errMalformed, fd.Name())
			}
			b = b[n:]
			var sub protoreflect.Message
			if fd.IsList() {
				sub = m.Mutable(fd).List().NewElement().Message()
			} else {
				sub = m.Mutable(fd).Message()
			}
			if err := unmarshalLenient(raw, sub, depth+1); err != nil {
				return err
			}
			if fd.IsList() {
				m.Mutable(fd).List().Append(protoreflect.ValueOfMessage(sub))
			}
			continue
		default:
			var k int
			var err error
			if v, k, err = scalar(fd, typ, b); err != nil {
				return err
			}
			b = b[k:]
		}
		if fd.IsList() {
			m.Mutable(fd).List().Append(v)
		} else {
			m.Set(fd, v)
		}
	}
	return nil
}

func isScalar(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// expectedType is the wire type a field of kind k is sent with (unpacked).
func expectedType(k protoreflect.Kind) protowire.Type {
	if !isScalar(k) {
		return protowire.BytesType
	}
	return wireTypeOf(k)
}

func wireTypeOf(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// scalar decodes one value of a non-message field from b.
func scalar(fd protoreflect.FieldDescriptor, typ protowire.Type, b []byte) (protoreflect.Value, int, error) {
	bad := func() (protoreflect.Value, int, error) {
		return protoreflect.Value{}, 0, fmt.Errorf("%w: field %s", errMalformed, fd.Name())
	}
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		raw, n := protowire.ConsumeBytes(b)
		if n < 0 || typ != protowire.BytesType {
			return bad()
		}
		if fd.Kind() == protoreflect.StringKind {
			return protoreflect.ValueOfString(string(raw)), n, nil
		}
		return protoreflect.ValueOfBytes(append([]byte(nil), raw...)), n, nil
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		x, n := protowire.ConsumeFixed32(b)
		if n < 0 || typ != protowire.Fixed32Type {
			return bad()
		}
		switch fd.Kind() {
		case protoreflect.Fixed32Kind:
			return protoreflect.ValueOfUint32(x), n, nil
		case protoreflect.Sfixed32Kind:
			return protoreflect.ValueOfInt32(int32(x)), n, nil
		}
		return protoreflect.ValueOfFloat32(math.Float32frombits(x)), n, nil
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		x, n := protowire.ConsumeFixed64(b)
		if n < 0 || typ != protowire.Fixed64Type {
			return bad()
		}
		switch fd.Kind() {
		case protoreflect.Fixed64Kind:
			return protoreflect.ValueOfUint64(x), n, nil
		case protoreflect.Sfixed64Kind:
			return protoreflect.ValueOfInt64(int64(x)), n, nil
		}
		return protoreflect.ValueOfFloat64(math.Float64frombits(x)), n, nil
	}
	x, n := protowire.ConsumeVarint(b)
	if n < 0 || typ != protowire.VarintType {
		return bad()
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(protowire.DecodeBool(x)), n, nil
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(int32(x))), n, nil
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32(int32(x)), n, nil
	case protoreflect.Sint32Kind:
		return protoreflect.ValueOfInt32(int32(protowire.DecodeZigZag(x & 0xffffffff))), n, nil
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32(uint32(x)), n, nil
	case protoreflect.Int64Kind:
		return protoreflect.ValueOfInt64(int64(x)), n, nil
	case protoreflect.Sint64Kind:
		return protoreflect.ValueOfInt64(protowire.DecodeZigZag(x)), n, nil
	case protoreflect.Uint64Kind:
		return protoreflect.ValueOfUint64(x), n, nil
	}
	return bad()
}
