package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Bounds of one ForwardStream frame that carries several batches; a batch
// larger than either goes alone, as a unary Forward would carry it. (A
// batch holds at most its sender's --max-batch-keys ops, and a peer accepts
// up to service.MaxForwardedOps whatever its own.)
const (
	fwdMaxOps        = 512
	fwdMaxFrameBytes = 4 << 20
)

// fwdWindow bounds the frames sent to a peer and not yet read by it
// (ForwardStreamResponse.frames_read): while it is full, batches queue and
// the next frame carries them all, so the busier the peer, the larger the
// frames, with no timer.
const fwdWindow = 1

// fwdRetryUnsupported is how long a peer that lacks ForwardStream (an older
// version, during a rolling upgrade) is called with Forward before the
// stream is tried again.
const fwdRetryUnsupported = time.Minute

var errStreamUnsupported = errors.New("peer does not serve ForwardStream")

// fwdPipe is the forwarding stream to one peer address. Batches from any
// number of goroutines share it: a caller that finds no send in progress
// and room in the window sends the queue itself; otherwise the receiver
// sends it when the peer acknowledges a frame.
type fwdPipe struct {
	pool *Pool
	addr string

	mu            sync.Mutex
	cur           *fstream  // nil when no stream is open
	opening       *fopening // the open attempt in progress; nil when none
	unsupportedAt time.Time // when the peer last answered UNIMPLEMENTED
}

// fstream is one open ForwardStream; the pipe's mu guards its fields.
type fstream struct {
	stream   pb.Peer_ForwardStreamClient
	cancel   context.CancelFunc
	queue    []*fcall
	slots    map[uint64]fslot // op id on the stream → its call and index
	nextID   uint64
	sending  bool
	inFlight int
	failed   bool
	failure  error
}

// fcall is one batch (one Forward) in flight on a stream.
type fcall struct {
	req     *pb.ForwardRequest
	ids     []uint64 // the batch's own op ids, restored in the results
	results []*pb.PipelineResult
	left    int
	size    int
	hlc     uint64
	sent    bool
	dropped bool // the caller gave up before it was sent
	err     error
	done    chan struct{} // closed once results or err are final
}

type fslot struct {
	call *fcall
	i    int
}

// pipe returns the forwarding stream of addr, nil when the pool is closed
// or the peer lacks ForwardStream.
func (p *Pool) pipe(addr string) *fwdPipe {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	fp, ok := p.pipes[addr]
	if !ok {
		fp = &fwdPipe{pool: p, addr: addr}
		p.pipes[addr] = fp
	}
	p.mu.Unlock() // a pipe's mu is never taken under the pool's
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.unsupported() {
		return nil
	}
	return fp
}

func (fp *fwdPipe) unsupported() bool {
	return !fp.unsupportedAt.IsZero() && time.Since(fp.unsupportedAt) < fwdRetryUnsupported
}

// forward sends req (at least one op) over the stream and waits for all
// its results, which carry the ids req's ops had. It gives the ops ids of
// the stream's own (a frame holds several batches), so req must not be
// used again but for a Forward after errStreamUnsupported: the peer lacks
// the stream and applied nothing. The ids are not put back: a frame with
// these ops may still be being encoded when forward returns.
func (fp *fwdPipe) forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	c := &fcall{req: req, ids: make([]uint64, len(req.Ops)), results: make([]*pb.PipelineResult, len(req.Ops)), left: len(req.Ops), done: make(chan struct{})}
	for i, op := range req.Ops {
		c.ids[i] = op.Id
		c.size += op.SizeVT() + 16
	}
	s, err := fp.stream(ctx)
	if err != nil {
		return nil, fp.classify(to, err, false)
	}
	fp.mu.Lock()
	if s.failed { // since stream returned: nothing of c was sent
		err := s.failure
		fp.mu.Unlock()
		return nil, fp.classify(to, err, false)
	}
	s.queue = append(s.queue, c)
	if s.sending || s.inFlight >= fwdWindow {
		fp.mu.Unlock()
	} else {
		s.sending = true
		fp.flush(s)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		fp.mu.Lock()
		select {
		case <-c.done: // answered meanwhile
			fp.mu.Unlock()
		default:
			c.dropped = !c.sent
			if c.sent {
				for _, op := range req.Ops {
					delete(s.slots, op.Id)
				}
			}
			fp.mu.Unlock()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if c.err != nil {
		return nil, fp.classify(to, c.err, c.sent)
	}
	for i, r := range c.results {
		r.Id = c.ids[i]
	}
	return &pb.ForwardResponse{Hlc: c.hlc, Results: c.results}, nil
}

// classify wraps a stream failure as Pool.call wraps a unary one: the
// peer's own status passes through; a transport failure is ErrUnreachable
// when the batch was not sent, else ErrConnectionLost.
func (fp *fwdPipe) classify(to ring.Member, err error, sent bool) error {
	if errors.Is(err, errStreamUnsupported) || errors.Is(err, ErrClosed) || reason.FromNode(err) {
		return err
	}
	code := status.Code(err)
	if code != codes.Unavailable && code != codes.Canceled {
		return err
	}
	msg := status.Convert(err).Message()
	if !sent {
		return fmt.Errorf("%w: %s at %s: %s", ErrUnreachable, to.Name, to.Addr, msg)
	}
	return fmt.Errorf("%w: %s at %s: %s", ErrConnectionLost, to.Name, to.Addr, msg)
}

// fopening is one attempt to open a stream, shared by the callers that
// need the stream meanwhile.
type fopening struct {
	done chan struct{} // closed when the attempt ends; s and err are set
	s    *fstream
	err  error
}

// stream returns the open stream, opening one if there is none. Opening
// waits for the connection, which a peer that does not answer can make
// take long, so it runs on a goroutine of its own (which then receives on
// the stream) and each caller waits only as long as its ctx allows.
func (fp *fwdPipe) stream(ctx context.Context) (*fstream, error) {
	fp.mu.Lock()
	if s := fp.cur; s != nil {
		fp.mu.Unlock()
		return s, nil
	}
	if fp.unsupported() {
		fp.mu.Unlock()
		return nil, errStreamUnsupported
	}
	o := fp.opening
	if o == nil {
		o = &fopening{done: make(chan struct{})}
		if !fp.pool.goStream(func() { fp.open(o) }) {
			fp.mu.Unlock()
			return nil, ErrClosed
		}
		fp.opening = o
	}
	fp.mu.Unlock()
	select {
	case <-o.done:
		return o.s, o.err
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// open opens a stream for the callers waiting on o, then receives on it.
func (fp *fwdPipe) open(o *fopening) {
	var st pb.Peer_ForwardStreamClient
	ctx, cancel := context.WithCancel(fp.pool.ctx) // Close cancels it
	cc, err := fp.pool.Conn(fp.addr)
	if err == nil {
		st, err = pb.NewPeerClient(cc).ForwardStream(ctx)
	}
	fp.mu.Lock()
	fp.opening = nil
	if err != nil {
		cancel()
		if status.Code(err) == codes.Unimplemented {
			fp.unsupportedAt, err = time.Now(), errStreamUnsupported
		}
		o.err = err
	} else {
		o.s = &fstream{stream: st, cancel: cancel, slots: map[uint64]fslot{}}
		fp.cur = o.s
	}
	fp.mu.Unlock()
	close(o.done)
	if o.s != nil {
		fp.recvLoop(o.s)
	}
}

// flush sends s's queued batches, as many per frame as fit, until the
// queue is empty or the window full. The caller holds fp.mu and has set
// s.sending; flush releases both.
func (fp *fwdPipe) flush(s *fstream) {
	for len(s.queue) > 0 && !s.failed && s.inFlight < fwdWindow {
		req := &pb.ForwardStreamRequest{} // new each time: gRPC may keep it after Send
		n, size := 0, 0
		for _, c := range s.queue {
			if c.dropped {
				n++
				continue
			}
			// Batches routed by another table go in a frame of their own:
			// the owner decides by the frame's version whether to serve
			// its ops or send them on (engine.Execute).
			if len(req.Ops) > 0 && (len(req.Ops)+len(c.req.Ops) > fwdMaxOps || size+c.size > fwdMaxFrameBytes || c.req.TableVersion != req.TableVersion) {
				break
			}
			req.From = c.req.From
			req.Hlc = max(req.Hlc, c.req.Hlc)
			req.TableVersion = c.req.TableVersion
			size += c.size
			c.sent = true
			for i, op := range c.req.Ops {
				s.nextID++
				op.Id = s.nextID
				s.slots[op.Id] = fslot{c, i}
				req.Ops = append(req.Ops, op)
			}
			n++
		}
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		if len(req.Ops) == 0 {
			continue
		}
		s.inFlight++
		fp.mu.Unlock()
		err := s.stream.Send(req)
		fp.mu.Lock()
		// io.EOF: the stream has ended; recvLoop learns why (the peer's
		// status) and fails the calls with it.
		if err != nil && !errors.Is(err, io.EOF) {
			fp.failLocked(s, err)
		}
	}
	s.sending = false
	fp.mu.Unlock()
}

// recvLoop hands results to their batches until the stream ends.
func (fp *fwdPipe) recvLoop(s *fstream) {
	for {
		resp, err := s.stream.Recv()
		fp.mu.Lock()
		if err != nil {
			if errors.Is(err, io.EOF) { // a peer ends the stream only with a status
				err = status.Error(codes.Unavailable, "forward stream ended by the peer")
			}
			fp.failLocked(s, err)
			fp.mu.Unlock()
			return
		}
		for _, r := range resp.Results {
			sl, ok := s.slots[r.Id]
			if !ok {
				continue // its caller gave up
			}
			delete(s.slots, r.Id)
			c := sl.call
			c.results[sl.i] = r
			if c.left--; c.left == 0 {
				c.hlc = resp.Hlc
				close(c.done)
			}
		}
		s.inFlight -= int(resp.FramesRead)
		if len(s.queue) > 0 && !s.sending && s.inFlight < fwdWindow {
			s.sending = true
			fp.flush(s)
		} else {
			fp.mu.Unlock()
		}
	}
}

// failLocked ends s: every batch still waiting gets err. The caller holds
// fp.mu.
func (fp *fwdPipe) failLocked(s *fstream, err error) {
	if s.failed {
		return
	}
	if status.Code(err) == codes.Unimplemented {
		fp.unsupportedAt = time.Now()
		err = errStreamUnsupported
	}
	s.failed, s.failure = true, err
	s.cancel()
	if fp.cur == s {
		fp.cur = nil
	}
	failed := map[*fcall]bool{}
	for id, sl := range s.slots {
		delete(s.slots, id)
		failed[sl.call] = true
	}
	for _, c := range s.queue {
		failed[c] = true
	}
	for c := range failed {
		if c.err == nil && c.left > 0 {
			c.err = err
			close(c.done)
		}
	}
	clear(s.queue)
	s.queue = nil
}
