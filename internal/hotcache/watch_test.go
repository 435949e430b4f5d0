package hotcache

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// fakeInvals is an owner's invalidation stream driven by the test.
type fakeInvals struct {
	grpc.ClientStream // not used
	ctx               context.Context
	msgs              chan *pb.WatchInvalidationsResponse
	fail              chan error
}

func (s *fakeInvals) Recv() (*pb.WatchInvalidationsResponse, error) {
	select {
	case m := <-s.msgs:
		return m, nil
	case err := <-s.fail:
		return nil, err
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// newTestHotCache returns a hot cache (rate 2/s: the second Get of a key is
// hot) whose streams the test drives: each subscription shows up on the
// returned channel.
func newTestHotCache(t *testing.T) (*Cache, chan *fakeInvals) {
	opened := make(chan *fakeInvals, 8)
	h := New(Config{MaxBytes: 1 << 20, MinRate: 2, TTL: time.Minute, Open: func(ctx context.Context, _ ring.Member) (pb.Cache_WatchInvalidationsClient, error) {
		s := &fakeInvals{ctx: ctx, msgs: make(chan *pb.WatchInvalidationsResponse, 8), fail: make(chan error, 1)}
		opened <- s
		return s, nil
	}, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(h.Close)
	return h, opened
}

var testOwner = ring.Member{Name: "owner", Addr: "127.0.0.1:1"}

// subscribe has the owner's stream confirm the subscription and waits until
// the cache takes it as live.
func subscribe(t *testing.T, h *Cache, opened chan *fakeInvals) *fakeInvals {
	t.Helper()
	h.watch(testOwner) // as a hot key's forward does
	var s *fakeInvals
	select {
	case s = <-opened:
	case <-time.After(5 * time.Second):
		t.Fatal("no subscription")
	}
	s.msgs <- &pb.WatchInvalidationsResponse{}
	waitFor(t, func() bool { return h.Stats().Streams == 1 })
	return s
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Token makes rk hot and returns a fill token for it.
func hotTokenFor(t *testing.T, h *Cache, rk string) Token {
	t.Helper()
	for range 10 {
		if tok, ok := h.Admit(rk, testOwner); ok {
			return tok
		}
	}
	t.Fatal("no token for a hot key with a live stream")
	return Token{}
}

func TestHotCache_NoFillBeforeSubscribed(t *testing.T) {
	h, opened := newTestHotCache(t)
	for range 5 {
		if _, ok := h.Admit("ns\x00k", testOwner); ok {
			t.Fatal("a token before the owner's stream is live: its changes could be missed")
		}
	}
	subscribe(t, h, opened)
	tok := hotTokenFor(t, h, "ns\x00k")
	h.Fill("ns\x00k", tok, []byte("v"), true)
	if v, found, ok := h.Get("ns\x00k", testOwner); !ok || !found || string(v) != "v" {
		t.Fatalf("get = %q %v %v after a fill", v, found, ok)
	}
	// Another owner for the key (the ring changed): not served.
	if _, _, ok := h.Get("ns\x00k", ring.Member{Name: "other"}); ok {
		t.Fatal("served an entry filled from another owner")
	}
}

// An invalidation that arrives while the forward is in flight wins over
// the forward's (older) answer.
func TestHotCache_InvalidationDuringForwardFailsTheFill(t *testing.T) {
	h, opened := newTestHotCache(t)
	s := subscribe(t, h, opened)
	tok := hotTokenFor(t, h, "ns\x00k")
	s.msgs <- &pb.WatchInvalidationsResponse{Keys: []*pb.KeyRef{{Namespace: "ns", Key: "k"}}}
	waitFor(t, func() bool { return h.Stats().Invalidations == 1 })
	h.Fill("ns\x00k", tok, []byte("old"), true)
	if v, _, ok := h.Get("ns\x00k", testOwner); ok {
		t.Fatalf("a value invalidated during its forward was installed: %q", v)
	}
	// An invalidation after the fill drops the entry.
	tok = hotTokenFor(t, h, "ns\x00k")
	h.Fill("ns\x00k", tok, []byte("new"), true)
	if _, _, ok := h.Get("ns\x00k", testOwner); !ok {
		t.Fatal("fill with a fresh token not stored")
	}
	s.msgs <- &pb.WatchInvalidationsResponse{Keys: []*pb.KeyRef{{Namespace: "ns", Key: "k"}}}
	waitFor(t, func() bool { _, _, ok := h.Get("ns\x00k", testOwner); return !ok })
}

// A broken stream kills the owner's entries and the fills in flight; the
// cache resubscribes and fills again once the new stream is live.
func TestHotCache_StreamBreakKillsEntriesAndFills(t *testing.T) {
	h, opened := newTestHotCache(t)
	s := subscribe(t, h, opened)
	h.Fill("ns\x00a", hotTokenFor(t, h, "ns\x00a"), []byte("a"), true)
	inFlight := hotTokenFor(t, h, "ns\x00b")
	s.fail <- errors.New("connection reset")
	waitFor(t, func() bool { return h.Stats().Resets == 1 })
	if _, _, ok := h.Get("ns\x00a", testOwner); ok {
		t.Fatal("an entry survived its owner's stream")
	}
	h.Fill("ns\x00b", inFlight, []byte("b"), true)
	if _, _, ok := h.Get("ns\x00b", testOwner); ok {
		t.Fatal("a fill begun before the stream broke was stored")
	}
	subscribe(t, h, opened) // the resubscription
	h.Fill("ns\x00b", hotTokenFor(t, h, "ns\x00b"), []byte("b"), true)
	if _, _, ok := h.Get("ns\x00b", testOwner); !ok {
		t.Fatal("no fill after resubscribing")
	}
}

func TestHotCache_ResetKillsFillsInFlight(t *testing.T) {
	h, opened := newTestHotCache(t)
	subscribe(t, h, opened)
	tok := hotTokenFor(t, h, "ns\x00k")
	h.Reset()
	h.Fill("ns\x00k", tok, []byte("v"), true)
	if _, _, ok := h.Get("ns\x00k", testOwner); ok {
		t.Fatal("a fill begun before a reset was stored")
	}
}

// A stream nobody has wanted for the idle time closes, and its entries go
// with it.
func TestHotCache_IdleStreamCloses(t *testing.T) {
	h, opened := newTestHotCache(t)
	subscribe(t, h, opened)
	h.Fill("ns\x00k", hotTokenFor(t, h, "ns\x00k"), []byte("v"), true)
	h.tick(h.now()) // wanted just now: stays
	if h.Stats().Streams != 1 {
		t.Fatal("a stream wanted just now was closed")
	}
	h.tick(h.now() + int64(h.idle) + 1)
	if s := h.Stats(); s.Streams != 0 {
		t.Fatalf("an idle stream stayed open: %+v", s)
	}
	if _, _, ok := h.Get("ns\x00k", testOwner); ok {
		t.Fatal("an entry outlived its stream")
	}
}
