package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// pipelineMaxOps bounds the ops of one frame (a node accepts 1000 by
// default).
const pipelineMaxOps = 512

// pipelineMaxFrameBytes bounds the encoded size of one frame: a node accepts
// messages of 4 MiB, or more when a namespace allows larger values (node.New
// sets grpc.MaxRecvMsgSize to max(4 MiB, largest value + 64 KiB)), and fails
// the whole stream on a larger one. An op larger than this goes alone.
const pipelineMaxFrameBytes = 4 << 20

// pipelineWindow bounds the frames sent to a node and not yet read by it
// (PipelineResponse.frames_read). While the window is full, calls queue, and
// the next frame carries them all: the busier the node, the larger the
// frames, with no timer. A lone call finds the window empty and goes at
// once. The receiver goroutine sends when the window opens; that cannot
// block on flow control while only one frame is ever unread, so raising the
// window needs the receiver to hand sending to another goroutine.
const pipelineWindow = 1

// errPipelineUnsupported says the node predates the Pipeline RPC; the
// client then uses unary calls with it.
var errPipelineUnsupported = errors.New("node does not serve Pipeline")

// pipelineRetryUnsupported is how long a node that lacks Pipeline is called
// unary before the client tries Pipeline with it again.
const pipelineRetryUnsupported = time.Minute

// supported reports whether calls to the node should use Pipeline.
func (p *pipeline) supported() bool {
	at := p.unsupportedAt.Load()
	return at == 0 || time.Since(time.Unix(0, at)) > pipelineRetryUnsupported
}

// errNotSent marks a call that failed before any of it reached the node;
// wrap an error with markNotSent.
var errNotSent = errors.New("not sent")

// notSentError is an error of a call the node surely did not apply. Its
// message is the cause's, so users see the gRPC status as it came.
type notSentError struct{ err error }

func (e notSentError) Error() string   { return e.err.Error() }
func (e notSentError) Unwrap() []error { return []error{errNotSent, e.err} }

func markNotSent(err error) error { return notSentError{err} }

// pipeline carries one node's Gets, Sets and Deletes over a Pipeline
// stream. There is no timer and no sender goroutine: a caller that finds no
// send in progress and room in the window (pipelineWindow) sends its call
// itself, together with every call queued so far; when the window is full,
// the receiver goroutine sends the queue as soon as the node reports a
// frame read. Results come back by id to the receiver, which hands each to
// its caller.
type pipeline struct {
	c    *Client
	node *nodeConn
	// unsupportedAt is when the node last answered Pipeline with
	// UNIMPLEMENTED (unix nanoseconds; 0: never). Calls then go unary until
	// pipelineRetryUnsupported has passed, so an upgraded node is pipelined
	// again without restarting the client.
	unsupportedAt atomic.Int64

	mu      sync.Mutex
	cur     *pstream // nil when no stream is open
	opening *opening // the open attempt in progress; nil when none
}

// opening is one attempt to open a stream, shared by the callers that need
// the stream meanwhile.
type opening struct {
	done chan struct{} // closed when the attempt ends; s and err are set
	s    *pstream
	err  error
}

// pstream is one Pipeline stream; the pipeline's mu guards its fields.
type pstream struct {
	stream   pb.Cache_PipelineClient
	cancel   context.CancelFunc
	queue    []*pcall // calls not yet sent
	calls    map[uint64]*pcall
	nextID   uint64
	sending  bool // a goroutine is sending queue
	inFlight int  // frames sent and not yet read by the node
	failed   bool
	failure  error // why it failed; set with failed
}

// pcall is one call in flight.
type pcall struct {
	op        *pb.PipelineOp
	size      int  // encoded size in a frame, at most
	sent      bool // handed to the stream: the node may have applied it
	cancelled bool // the caller stopped waiting before it was sent
	res       *pb.PipelineResult
	err       error
	done      chan struct{} // receives once
}

// do sends op and waits for its result (an error for a failed op, as a
// unary call would return).
func (p *pipeline) do(ctx context.Context, op *pb.PipelineOp) (*pb.PipelineResult, error) {
	s, err := p.stream(ctx)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok { // the node gives up waiting ops then
		op.Timeout = durationpb.New(time.Until(d))
	}
	// Its size in a frame, at most: the id set below (a tag and up to 10
	// bytes) counted in, and the field's tag and length around it.
	size := op.SizeVT() + 11
	call := &pcall{op: op, size: 1 + protowire.SizeBytes(size), done: make(chan struct{}, 1)}
	p.mu.Lock()
	if s.failed { // failed since stream returned: nothing was sent
		why := s.failure
		p.mu.Unlock()
		if errors.Is(why, errPipelineUnsupported) { // the caller falls back to unary
			return nil, markNotSent(why)
		}
		return nil, markNotSent(status.Error(codes.Unavailable, "pipeline stream ended before the call was sent"))
	}
	s.nextID++
	op.Id = s.nextID
	s.calls[op.Id] = call
	s.queue = append(s.queue, call)
	if s.sending || s.inFlight >= pipelineWindow {
		p.mu.Unlock() // the sender, or the receiver when the window opens, takes it
	} else {
		s.sending = true
		p.flush(s)
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		p.mu.Lock()
		delete(s.calls, op.Id)
		call.cancelled = !call.sent
		p.mu.Unlock()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if call.err != nil {
		return nil, call.err
	}
	if r := call.res; r.ErrorCode != 0 {
		return nil, resultError(codes.Code(r.ErrorCode), r.ErrorMessage, r.ErrorReason, r.GetRetryDelay().AsDuration())
	}
	return call.res, nil
}

// checkText rejects a namespace or key that cannot be encoded: proto3
// strings must be valid UTF-8, and a frame that fails to encode fails its
// stream, with every call on it. A node rejects such a key
// (INVALID_ARGUMENT) too.
func checkText(ns, key string) error {
	switch {
	case !utf8.ValidString(key):
		return status.Error(codes.InvalidArgument, "key is not valid UTF-8")
	case !utf8.ValidString(ns):
		return status.Error(codes.InvalidArgument, "namespace is not valid UTF-8")
	}
	return nil
}

// stream returns the open stream, opening one if there is none. The stream
// outlives the call that opens it, so it is opened on a goroutine of its
// own, and every caller waits for it only as long as its ctx allows: opening
// waits for the connection, which a node that does not answer (or the
// WaitForReady call option) can make take much longer.
func (p *pipeline) stream(ctx context.Context) (*pstream, error) {
	p.mu.Lock()
	if s := p.cur; s != nil {
		p.mu.Unlock()
		return s, nil
	}
	o := p.opening
	if o == nil {
		o = &opening{done: make(chan struct{})}
		c := p.c
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			p.mu.Unlock()
			return nil, markNotSent(errClosed)
		}
		p.opening = o
		c.pipes.Go(func() { p.open(o) })
		c.mu.Unlock()
	}
	p.mu.Unlock()
	select {
	case <-o.done:
		return o.s, o.err
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// open opens a stream for the callers waiting on o, and then receives on
// it. The stream is published (p.cur) before its receiver runs, so that a
// stream that fails at once is unpublished by fail, not kept as current.
func (p *pipeline) open(o *opening) {
	o.s, o.err = p.openStream()
	p.mu.Lock()
	p.opening = nil
	p.cur = o.s
	p.mu.Unlock()
	close(o.done)
	if o.s != nil {
		p.recvLoop(o.s)
	}
}

func (p *pipeline) openStream() (*pstream, error) {
	ctx, cancel := context.WithCancel(p.c.ctx) // Close cancels it
	stream, err := p.node.cache.Pipeline(ctx)
	if err != nil {
		cancel()
		if status.Code(err) == codes.Unimplemented {
			p.unsupportedAt.Store(time.Now().UnixNano())
			return nil, errPipelineUnsupported
		}
		return nil, markNotSent(err)
	}
	return &pstream{stream: stream, cancel: cancel, calls: map[uint64]*pcall{}}, nil
}

// flush sends s's queued calls, as many per frame as have gathered, until
// the queue is empty or the window full. The caller holds p.mu and has set
// s.sending; flush releases both.
func (p *pipeline) flush(s *pstream) {
	for len(s.queue) > 0 && !s.failed && s.inFlight < pipelineWindow {
		// A new frame each time: gRPC may keep a message after Send.
		ops := make([]*pb.PipelineOp, 0, min(len(s.queue), pipelineMaxOps))
		n, size := 0, 0
		for _, call := range s.queue {
			if call.cancelled {
				n++
				continue
			}
			if len(ops) == pipelineMaxOps || len(ops) > 0 && size+call.size > pipelineMaxFrameBytes {
				break
			}
			size += call.size
			call.sent = true
			ops = append(ops, call.op)
			n++
		}
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		if len(ops) > 0 {
			s.inFlight++
		}
		p.mu.Unlock()
		var err error
		if len(ops) > 0 {
			err = s.stream.Send(&pb.PipelineRequest{Ops: ops})
			p.c.frames.Add(1)
		}
		// io.EOF: the stream has ended; recvLoop learns why (the node's
		// status) and fails the calls with it.
		if err != nil && !errors.Is(err, io.EOF) {
			p.fail(s, err)
		}
		p.mu.Lock()
	}
	s.sending = false
	p.mu.Unlock()
}

// recvLoop hands each result to its call.
func (p *pipeline) recvLoop(s *pstream) {
	checked := p.c.opts.Token == ""
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			p.fail(s, err)
			return
		}
		if !checked { // the node has answered: its header is in
			checked = true
			p.c.noteAuthOff(s.stream, p.node.addr)
		}
		p.mu.Lock()
		for _, r := range resp.Results {
			if call, ok := s.calls[r.Id]; ok {
				delete(s.calls, r.Id)
				call.res = r
				call.done <- struct{}{}
			}
		}
		s.inFlight -= int(resp.FramesRead)
		if len(s.queue) > 0 && !s.sending && s.inFlight < pipelineWindow {
			s.sending = true
			p.flush(s)
		} else {
			p.mu.Unlock()
		}
	}
}

// fail ends s: every call still waiting gets an error, marked not sent for
// the calls the node surely did not apply.
func (p *pipeline) fail(s *pstream, err error) {
	if errors.Is(err, io.EOF) { // a node ends the stream only with a status
		err = status.Error(codes.Unavailable, "pipeline stream ended by the node")
	}
	if status.Code(err) == codes.Unimplemented {
		p.unsupportedAt.Store(time.Now().UnixNano())
		err = errPipelineUnsupported
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.failed {
		return
	}
	s.failed, s.failure = true, err
	s.cancel()
	if p.cur == s {
		p.cur = nil
	}
	for id, call := range s.calls {
		call.err = err
		if !call.sent || errors.Is(err, errPipelineUnsupported) {
			call.err = markNotSent(err)
		}
		call.done <- struct{}{}
		delete(s.calls, id)
	}
	clear(s.queue)
	s.queue = nil
}
