package engine_test

import (
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
)

// The ops of the Redis door travel to owners as PipelineOps: each must come
// back from its proto as it went in.
func TestOpsExt_ProtoRoundTrip(t *testing.T) {
	for _, op := range []engine.Op{
		{Kind: engine.TTL, Namespace: "ns", Key: "k"},
		{Kind: engine.Expire, Namespace: "ns", Key: "k", TTL: 3 * time.Second, Flags: engine.ReturnOld},
		{Kind: engine.Expire, Namespace: "ns", Key: "k"},
		{Kind: engine.GetDel, Namespace: "ns", Key: "k", Flags: engine.MemoryOnly},
		{Kind: engine.SetIf, Namespace: "ns", Key: "k", Value: []byte("v"), TTL: time.Minute, Flags: engine.NX | engine.KeepTTL | engine.ReturnOld},
		{Kind: engine.SetIf, Namespace: "ns", Key: "k", Value: []byte("v"), Flags: engine.XX},
	} {
		got, ok := engine.OpFromProto(op.Proto(7))
		if !ok {
			t.Fatalf("%+v: OpFromProto refused its own proto", op)
		}
		if got.Kind != op.Kind || got.Namespace != op.Namespace || got.Key != op.Key || string(got.Value) != string(op.Value) || got.TTL != op.TTL || got.Flags != op.Flags {
			t.Errorf("round trip: got %+v, want %+v", got, op)
		}
	}
}

func TestOpsExt_TTLResultRoundTrip(t *testing.T) {
	for _, r := range []engine.Result{{Found: true, TTL: 1500 * time.Millisecond}, {Found: true}, {}} {
		got := engine.ResultFromProto(r.Proto(1))
		if got.Found != r.Found || got.TTL != r.TTL {
			t.Errorf("round trip: got %+v, want %+v", got, r)
		}
	}
}
