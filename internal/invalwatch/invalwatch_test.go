package invalwatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/ringcache/ringcache/internal/invalwatch"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStream hands out the messages it is given, then err. A unit-test
// fake of the one seam, the stream (the real one is covered by the hot
// cache and near cache tests).
type fakeStream struct {
	grpc.ClientStream
	msgs []*pb.WatchInvalidationsResponse
	err  error
	ctx  context.Context
}

func (s *fakeStream) Recv() (*pb.WatchInvalidationsResponse, error) {
	if len(s.msgs) > 0 {
		m := s.msgs[0]
		s.msgs = s.msgs[1:]
		return m, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	<-s.ctx.Done() // a live, quiet stream
	return nil, s.ctx.Err()
}

// recorder writes down what Follow tells the handler, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) Subscribed() { r.add("subscribed") }

func (r *recorder) Invalidate(keys []*pb.KeyRef) {
	var ks []string
	for _, k := range keys {
		ks = append(ks, k.Namespace+"/"+k.Key)
	}
	r.add("invalidate " + strings.Join(ks, ","))
}

func (r *recorder) Lost(err error) { r.add(fmt.Sprint("lost ", err)) }

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.events, "; ")
}

func subscribed() *pb.WatchInvalidationsResponse { return &pb.WatchInvalidationsResponse{} }

func keys(ks ...string) *pb.WatchInvalidationsResponse {
	m := &pb.WatchInvalidationsResponse{}
	for _, k := range ks {
		m.Keys = append(m.Keys, &pb.KeyRef{Namespace: "ns", Key: k})
	}
	return m
}

// Follow reports the subscription, then each batch of keys; a break is
// Lost with its cause, after which it subscribes again; when ctx ends it
// reports Lost(nil) and returns.
func TestFollow_ReportsKeysAndResubscribesAfterABreak(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	broken := errors.New("connection reset")
	opens := 0
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		invalwatch.Follow(ctx, func(ctx context.Context) (pb.Cache_WatchInvalidationsClient, error) {
			opens++
			switch opens {
			case 1:
				return &fakeStream{msgs: []*pb.WatchInvalidationsResponse{subscribed(), keys("a", "b")}, err: broken, ctx: ctx}, nil
			case 2:
				return nil, errors.New("node draining") // refused: no Subscribed
			default:
				return &fakeStream{msgs: []*pb.WatchInvalidationsResponse{subscribed(), keys("c")}, ctx: ctx}, nil
			}
		}, rec)
	}()
	want := "subscribed; invalidate ns/a,ns/b; lost connection reset; lost node draining; subscribed; invalidate ns/c"
	deadline := time.Now().Add(10 * time.Second)
	for rec.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("events:\n got %s\nwant %s", rec, want)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if got := rec.String(); got != want+"; lost <nil>" {
		t.Fatalf("after ctx ends, events:\n got %s\nwant %s; lost <nil>", got, want)
	}
}

func TestSleep_EndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := invalwatch.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep with a cancelled ctx = %v, want context.Canceled", err)
	}
	if err := invalwatch.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}
