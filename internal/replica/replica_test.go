package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

var origin = journal.Origin{Node: "owner", ID: "owner-journal"}

// replicaServer is one replica: a real gRPC server on loopback whose Peer
// service serves Replicate with a Receiver over a real journal. hold, when
// set, is called before each answer is sent.
type replicaServer struct {
	pb.UnimplementedPeerServer
	t      *testing.T
	recv   *Receiver
	path   string
	lis    net.Listener
	srv    *grpc.Server
	member ring.Member
	hold   func(*pb.ReplicateResponse)
	mu     sync.Mutex
	frames int // frames applied
}

func (s *replicaServer) Replicate(stream pb.Peer_ReplicateServer) error {
	return s.recv.Serve(holdingStream{stream, s})
}

type holdingStream struct {
	pb.Peer_ReplicateServer
	s *replicaServer
}

func (h holdingStream) Send(r *pb.ReplicateResponse) error {
	if h.s.hold != nil && r.GetSeq() > 0 {
		h.s.hold(r)
	}
	return h.Peer_ReplicateServer.Send(r)
}

func startReplica(t *testing.T, opts journal.Options) *replicaServer {
	t.Helper()
	s := &replicaServer{t: t, path: filepath.Join(t.TempDir(), "journal.db")}
	j, err := journal.Open(s.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	s.recv = &Receiver{Journal: j, Clock: &hlc.Clock{}, Self: "replica", Stop: make(chan struct{}),
		Applied: func(journal.Origin) { s.mu.Lock(); s.frames++; s.mu.Unlock() }}
	s.serve(t, "127.0.0.1:0")
	return s
}

func (s *replicaServer) serve(t *testing.T, addr string) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.lis = lis
	s.srv = grpc.NewServer()
	pb.RegisterPeerServer(s.srv, s)
	go s.srv.Serve(lis)
	t.Cleanup(s.srv.Stop)
	s.member = ring.Member{Name: "replica", Addr: lis.Addr().String()}
}

func (s *replicaServer) framesApplied() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames
}

// dialer opens streams over one client connection per address.
type dialer struct {
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func newDialer(t *testing.T) *dialer {
	d := &dialer{conns: map[string]*grpc.ClientConn{}}
	t.Cleanup(func() {
		for _, cc := range d.conns {
			cc.Close()
		}
	})
	return d
}

func (d *dialer) Replicate(ctx context.Context, to ring.Member) (pb.Peer_ReplicateClient, error) {
	d.mu.Lock()
	cc, ok := d.conns[to.Addr]
	if !ok {
		var err error
		if cc, err = grpc.NewClient("passthrough:///"+to.Addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			d.mu.Unlock()
			return nil, err
		}
		d.conns[to.Addr] = cc
	}
	d.mu.Unlock()
	return pb.NewPeerClient(cc).Replicate(ctx)
}

func newLinks(t *testing.T, timeout time.Duration) *Links {
	ls := New(Config{Origin: origin, Dial: newDialer(t), Clock: &hlc.Clock{}, Timeout: timeout})
	t.Cleanup(ls.Close)
	return ls
}

func rec(key string, version uint64) journal.Record {
	return journal.Record{Namespace: "orders", Key: key, Value: []byte("v-" + key), Version: version}
}

func waitAll(t *testing.T, rs []*Result) []error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make([]error, len(rs))
	for i, r := range rs {
		errs[i] = r.Wait(ctx)
	}
	return errs
}

// lastTx returns the last committed transaction of the (closed) journal file.
func lastTx(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var id int
	if err := db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLinks_ConcurrentWritesShareOneFrameAndOneFsyncOnTheReplica(t *testing.T) {
	const n = 50
	s := startReplica(t, journal.Options{})
	if _, err := s.recv.Journal.ID(); err != nil { // its commit happens before we count
		t.Fatal(err)
	}
	s.recv.Journal.Close()
	before := lastTx(t, s.path)
	j, err := journal.Open(s.path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	s.recv.Journal = j

	// The answer to the first frame waits until n more writes are queued.
	release, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.hold = func(r *pb.ReplicateResponse) {
		if r.GetSeq() == 1 {
			once.Do(func() { close(held); <-release })
		}
	}
	ls := newLinks(t, 20*time.Second)
	first := ls.Store(s.member, []journal.Record{rec("first", 1)})
	<-held // the first frame is stored; its answer waits
	results := make([]*Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = ls.Store(s.member, []journal.Record{rec(fmt.Sprintf("k%02d", i), 1)})[0] })
	}
	wg.Wait()
	l := ls.links["replica"]
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		queued := len(l.queue)
		l.mu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued behind the first frame", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	for i, err := range waitAll(t, append(first, results...)) {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if f := s.framesApplied(); f != 2 {
		t.Fatalf("the replica applied %d frames, want 2 (the first write, then the %d queued together)", f, n)
	}
	ls.Close()
	j.Close()
	// Open commits once (its buckets); then the two frames.
	if commits := lastTx(t, s.path) - before - 1; commits != 2 {
		t.Fatalf("the replica's journal committed %d times for 2 frames, want 2: one fsync for the %d concurrent writes", commits, n)
	}
	j2, err := journal.Open(s.path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	st, err := j2.ReplicaStats()
	if err != nil || st.Pending != n+1 || len(st.Origins) != 1 || st.Origins[0].Origin != origin {
		t.Fatalf("replica holds %+v, %v; want %d copies of %s", st, err, n+1, origin)
	}
	if got := ls.Stats(); got.Stored != n+1 || got.Frames != 2 {
		t.Fatalf("Links stats = %+v, want %d stored in 2 frames", got, n+1)
	}
}

func TestLinks_AnUnansweredFrameFailsWithinTheTimeoutAndMarksTheLinkDown(t *testing.T) {
	s := startReplica(t, journal.Options{})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	s.hold = func(*pb.ReplicateResponse) { <-stuck }
	ls := newLinks(t, 300*time.Millisecond)
	start := time.Now()
	err := waitAll(t, ls.Store(s.member, []journal.Record{rec("a", 1)}))[0]
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("result = %v, want ErrUnavailable", err)
	}
	if took > 5*time.Second {
		t.Fatalf("the failure took %s with a 300ms timeout", took)
	}
	if ls.Down("replica") == nil {
		t.Fatal("Down reports the link healthy right after a frame timed out")
	}
	t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
}

func TestLinks_CopiesRefusedAtTheReplicasBoundWrapErrFull(t *testing.T) {
	s := startReplica(t, journal.Options{MaxPending: 1})
	ls := newLinks(t, 10*time.Second)
	errs := waitAll(t, ls.Store(s.member, []journal.Record{rec("a", 1), rec("b", 1)}))
	if errs[0] != nil || !errors.Is(errs[1], journal.ErrFull) {
		t.Fatalf("results = %v, want a stored and b refused with ErrFull", errs)
	}
}

func TestLinks_DropsRemoveFlushedCopies(t *testing.T) {
	s := startReplica(t, journal.Options{})
	ls := newLinks(t, 10*time.Second)
	for _, err := range waitAll(t, ls.Store(s.member, []journal.Record{rec("a", 5), rec("b", 5)})) {
		if err != nil {
			t.Fatal(err)
		}
	}
	ls.Drop(s.member, []journal.Record{{Namespace: "orders", Key: "a", Version: 5}, {Namespace: "orders", Key: "b", Version: 4}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ls.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := s.recv.Journal.ReplicaStats()
	if err != nil || st.Pending != 1 {
		t.Fatalf("replica holds %+v, %v; want only b (dropped at an older version)", st, err)
	}
	if _, _, ok, _ := s.recv.Journal.ReplicaPending("orders", "b", func(journal.Origin) bool { return true }); !ok {
		t.Fatal("b's copy is gone")
	}
}

func TestLinks_ReconnectAfterTheReplicaRestarts(t *testing.T) {
	s := startReplica(t, journal.Options{})
	ls := newLinks(t, 2*time.Second)
	if err := waitAll(t, ls.Store(s.member, []journal.Record{rec("a", 1)}))[0]; err != nil {
		t.Fatal(err)
	}
	addr := s.lis.Addr().String()
	s.srv.Stop()
	if err := waitAll(t, ls.Store(s.member, []journal.Record{rec("b", 1)}))[0]; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a write to a stopped replica = %v, want ErrUnavailable", err)
	}
	s.serve(t, addr)
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := waitAll(t, ls.Store(s.member, []journal.Record{rec("c", 1)}))[0]
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded after the replica came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestReceiver_RefusesStreamsThatBreakTheProtocol(t *testing.T) {
	s := startReplica(t, journal.Options{})
	d := newDialer(t)
	for _, tc := range []struct {
		name string
		msgs []*pb.ReplicateRequest
	}{
		{"no hello", []*pb.ReplicateRequest{{Seq: 1}}},
		{"from itself", []*pb.ReplicateRequest{{Hello: &pb.ReplicateHello{Origin: "replica", JournalId: "x"}}}},
		{"frame out of order", []*pb.ReplicateRequest{{Hello: &pb.ReplicateHello{Origin: "o", JournalId: "x"}}, {Seq: 2}}},
		{"bad record", []*pb.ReplicateRequest{{Hello: &pb.ReplicateHello{Origin: "o", JournalId: "x"}}, {Seq: 1, Records: []*pb.ReplicaRecord{{Namespace: "orders"}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cs, err := d.Replicate(ctx, s.member)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.msgs {
				if err := cs.Send(m); err != nil {
					break
				}
			}
			for {
				_, err := cs.Recv()
				if err == nil {
					continue // the answer to the hello
				}
				if ctx.Err() != nil {
					t.Fatalf("the replica kept the stream open: %v", err)
				}
				t.Logf("stream ended: %v", err)
				return
			}
		})
	}
	if st, _ := s.recv.Journal.ReplicaStats(); st.Pending != 0 {
		t.Fatalf("bad streams stored %d copies", st.Pending)
	}
}
