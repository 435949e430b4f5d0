package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// pipelineMaxOps bounds the ops of one frame (a node accepts 1000 by
// default).
const pipelineMaxOps = 512

// pipelineWindow bounds the frames sent to a node and not yet read by it
// (PipelineResponse.frames_read). While the window is full, calls queue, and
// the next frame carries them all: the busier the node, the larger the
// frames, with no timer. A lone call finds the window empty and goes at
// once.
const pipelineWindow = 1

// errPipelineUnsupported says the node predates the Pipeline RPC; the
// client then uses unary calls with it.
var errPipelineUnsupported = errors.New("node does not serve Pipeline")

// errNotSent marks a call that failed before any of it reached the node.
var errNotSent = errors.New("not sent")

// pipeline carries one node's Gets, Sets and Deletes over a Pipeline
// stream. There is no timer and no sender goroutine: a caller that finds no
// send in progress and room in the window (pipelineWindow) sends its call
// itself, together with every call queued so far; when the window is full,
// the receiver goroutine sends the queue as soon as the node reports a
// frame read. Results come back by id to the receiver, which hands each to
// its caller.
type pipeline struct {
	c           *Client
	node        *nodeConn
	unsupported atomic.Bool

	mu      sync.Mutex
	cur     *pstream      // nil when no stream is open
	opening chan struct{} // closed when an open attempt ends; nil when none
}

// pstream is one Pipeline stream; the pipeline's mu guards its fields.
type pstream struct {
	stream   pb.Cache_PipelineClient
	cancel   context.CancelFunc
	queue    []*pcall // calls not yet sent
	calls    map[uint64]*pcall
	nextID   uint64
	sending  bool                // a goroutine is sending queue
	inFlight int                 // frames sent and not yet read by the node
	frame    *pb.PipelineRequest // reused by the sending caller
	failed   bool
}

// pcall is one call in flight.
type pcall struct {
	op        *pb.PipelineOp
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
	call := &pcall{op: op, done: make(chan struct{}, 1)}
	p.mu.Lock()
	if s.failed { // failed since stream returned: nothing was sent
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %w", errNotSent, status.Error(codes.Unavailable, "pipeline stream ended before the call was sent"))
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
	if call.res.ErrorCode != 0 {
		return nil, status.Error(codes.Code(call.res.ErrorCode), call.res.ErrorMessage)
	}
	return call.res, nil
}

// stream returns the open stream, opening one if there is none.
func (p *pipeline) stream(ctx context.Context) (*pstream, error) {
	for {
		p.mu.Lock()
		if s := p.cur; s != nil {
			p.mu.Unlock()
			return s, nil
		}
		if ch := p.opening; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
		ch := make(chan struct{})
		p.opening = ch
		p.mu.Unlock()

		s, err := p.open()
		p.mu.Lock()
		p.opening = nil
		p.cur = s
		p.mu.Unlock()
		close(ch)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func (p *pipeline) open() (*pstream, error) {
	c := p.c
	ctx, cancel := context.WithCancel(c.ctx)
	stream, err := p.node.cache.Pipeline(ctx)
	if err != nil {
		cancel()
		if status.Code(err) == codes.Unimplemented {
			p.unsupported.Store(true)
			return nil, errPipelineUnsupported
		}
		return nil, fmt.Errorf("%w: %w", errNotSent, err)
	}
	s := &pstream{stream: stream, cancel: cancel, calls: map[uint64]*pcall{}, frame: &pb.PipelineRequest{}}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cancel()
		return nil, fmt.Errorf("%w: %w", errNotSent, errClosed)
	}
	c.pipes.Go(func() { p.recvLoop(s) })
	return s, nil
}

// flush sends s's queued calls, as many per frame as have gathered, until
// the queue is empty or the window full. The caller holds p.mu and has set
// s.sending; flush releases both.
func (p *pipeline) flush(s *pstream) {
	for len(s.queue) > 0 && !s.failed && s.inFlight < pipelineWindow {
		n := min(len(s.queue), pipelineMaxOps)
		ops := s.frame.Ops[:0]
		for _, call := range s.queue[:n] {
			if !call.cancelled {
				call.sent = true
				ops = append(ops, call.op)
			}
		}
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		s.frame.Ops = ops
		if len(ops) > 0 {
			s.inFlight++
		}
		p.mu.Unlock()
		var err error
		if len(ops) > 0 {
			err = s.stream.Send(s.frame)
			p.c.frames.Add(1)
		}
		clear(ops)
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
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			p.fail(s, err)
			return
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
		p.unsupported.Store(true)
		err = errPipelineUnsupported
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.failed {
		return
	}
	s.failed = true
	s.cancel()
	if p.cur == s {
		p.cur = nil
	}
	for id, call := range s.calls {
		call.err = err
		if !call.sent || errors.Is(err, errPipelineUnsupported) {
			call.err = fmt.Errorf("%w: %w", errNotSent, err)
		}
		call.done <- struct{}{}
		delete(s.calls, id)
	}
	clear(s.queue)
	s.queue = nil
}
