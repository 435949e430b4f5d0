package service

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/engine"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// pipelineMaxWaiting bounds a Pipeline stream's ops that wait (a load, a
// forward to the owner, a database or journal write). While that many wait,
// the stream reads no further frame, so HTTP/2 flow control holds the client
// back instead of the node piling up goroutines.
const pipelineMaxWaiting = 512

// pipelineMaxUnsent bounds the request frames read whose answers wait
// behind a send in progress, which happens when the client does not read.
// The stream reads no further frame until they are sent, so such a client
// is held back by flow control instead of the node queueing answers without
// bound. A client that keeps to its window (see frames_read) has one.
const pipelineMaxUnsent = 16

// pipelineMaxResponseBytes is the value bytes above which the node splits
// its answers over several responses (a single larger value goes alone).
const pipelineMaxResponseBytes = 4 << 20

// Pipeline implements pb.CacheServer: many calls over one stream. Each
// frame's ops go through engine.Execute together; those it answers from
// memory (a hit on its owner, a cache-aside write) are answered in the
// response to their own frame, those that must wait on a goroutine of
// their own in a later response. When the node drains, the stream answers
// every op it has read and then ends with the node's not-ready status,
// which tells the client that the ops it sent after those were not applied
// and may go to another node.
//
// There is no sender goroutine: whoever has results (the frame reader, or
// an op finishing) sends them, together with any others that gathered
// while another send was in progress, which saves a goroutine handoff per
// frame.
func (c *Cache) Pipeline(stream pb.Cache_PipelineServer) error {
	return c.s.pipeline(stream.Context(), stream, CallerFrom(stream.Context()), c.s.e.Draining)
}

// frames is the stream a pipe reads frames from and sends answers on:
// Cache.Pipeline's, or Peer.ForwardStream's through forwardFrames.
type frames interface {
	Recv() (*pb.PipelineRequest, error)
	Send(*pb.PipelineResponse) error
}

// pipeline serves a stream of frames for caller until it ends, or until
// ended reports true (checked at every change of the engine's state): the
// stream then answers every op it has read and ends with NODE_NOT_READY.
func (s *Services) pipeline(ctx context.Context, stream frames, caller engine.Caller, ended func() bool) error {
	e := s.e
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pipe{s: s, ctx: ctx, caller: caller, stream: stream, sendFailed: make(chan struct{}), waiting: make(chan struct{}, pipelineMaxWaiting)}
	if t, ok := stream.(interface{ tableVersion() uint64 }); ok {
		p.tableVersion = t.tableVersion // a peer's forwarding stream
	}
	p.outTaken = sync.NewCond(&p.outMu)
	recvDone := make(chan error, 1)
	go func() { recvDone <- p.recvLoop() }()

	var err error
wait:
	for {
		changed := e.Changed()
		if ended() {
			err = engine.StatusErr(engine.ErrNotReady)
			break
		}
		select {
		case err = <-recvDone:
			if errors.Is(err, io.EOF) {
				err = nil // the client closed its side: answer what it sent
			}
			break wait
		case <-p.sendFailed:
			cancel() // the waiting ops end early; their results go nowhere
			break wait
		case <-changed:
		}
	}
	p.stop()     // no frame is read after this one...
	p.ops.Wait() // ...and every op read has been answered
	if serr := p.sendErr; serr != nil {
		return serr
	}
	return err
}

// pipe is the state of one Pipeline stream.
type pipe struct {
	s      *Services
	ctx    context.Context
	caller engine.Caller
	// tableVersion, for a peer's forwarding stream, is the version of the
	// table the sender routed the frame read last by; nil for a client's.
	tableVersion func() uint64

	// mu orders frame processing against stop: once stopped is set, no
	// further op starts.
	mu      sync.Mutex
	stopped bool
	ops     sync.WaitGroup // frames being answered, and ops that wait
	waiting chan struct{}  // semaphore of pipelineMaxWaiting

	stream     frames
	outMu      sync.Mutex
	out        []*pb.PipelineResult // results not yet sent
	outFrames  uint32               // request frames read and not yet acknowledged
	outTaken   *sync.Cond           // outFrames fell to 0, or sendErr was set
	sending    bool                 // a goroutine is sending out
	sendErr    error                // the first failed send; set once, before sendFailed closes
	sendFailed chan struct{}
}

func (p *pipe) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

// frame collects the answers of one frame's ops while Execute runs; an
// answer that comes after that is sent on its own.
type frame struct {
	mu       sync.Mutex
	open     bool
	answered []*pb.PipelineResult
}

// recvLoop reads frames until the stream ends or the pipe stops.
func (p *pipe) recvLoop() error {
	for {
		p.outMu.Lock()
		for p.outFrames >= pipelineMaxUnsent && p.sendErr == nil {
			p.outTaken.Wait() // a sender holds them and waits on the client
		}
		p.outMu.Unlock()
		req, err := p.stream.Recv()
		if err != nil {
			return err
		}
		if max := p.maxOps(); len(req.Ops) > max {
			return status.Errorf(codes.InvalidArgument, "pipeline frame carries %d ops, at most %d per frame", len(req.Ops), max)
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil
		}
		p.ops.Add(1) // until the answers are sent: the handler waits for them
		p.s.stats.frames.Add(1)
		p.s.stats.ops.Add(uint64(len(req.Ops)))
		caller := p.caller
		if p.tableVersion != nil {
			caller.TableVersion = p.tableVersion()
		}
		p.serve(caller, req.Ops)
		p.mu.Unlock()
		p.ops.Done()
	}
}

// maxOps bounds the ops of one frame: the node's MaxBatch for a client,
// MaxForwardedOps for a peer's forwarding stream.
func (p *pipe) maxOps() int {
	if p.caller.Forwarded {
		return MaxForwardedOps
	}
	return p.s.cfg.MaxBatch
}

// serve runs one frame's ops and sends the answers it has by the time
// Execute returns, with the frame's acknowledgement.
func (p *pipe) serve(caller engine.Caller, pops []*pb.PipelineOp) {
	f := &frame{open: true, answered: make([]*pb.PipelineResult, 0, len(pops))}
	ops := make([]engine.Op, len(pops))
	valid := make([]bool, len(pops))
	for i, o := range pops {
		ops[i], valid[i] = engine.OpFromProto(o)
	}
	results := make([]pb.PipelineResult, len(pops)) // one allocation, not one per op
	done := func(i int, r engine.Result) {
		if !valid[i] {
			r = engine.Result{Err: engine.ErrNoOp}
		}
		res := &results[i]
		r.ProtoTo(pops[i].Id, res)
		f.mu.Lock()
		if f.open {
			f.answered = append(f.answered, res)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		p.send(0, res)
	}
	p.s.e.Execute(p.ctx, caller, ops, done, p.spawn)
	f.mu.Lock()
	f.open = false
	answered := f.answered
	f.mu.Unlock()
	p.send(1, answered...)
}

// spawn runs an op that must wait on a goroutine of its own; while
// pipelineMaxWaiting ops wait, it blocks the frame reader.
func (p *pipe) spawn(run func()) {
	p.s.stats.waits.Add(1)
	p.waiting <- struct{}{}
	p.ops.Add(1)
	go func() {
		defer func() { <-p.waiting; p.ops.Done() }()
		run()
	}()
}

// send queues results, and the acknowledgement of framesRead request
// frames, and unless another goroutine is sending already (it will take
// them along) sends everything queued, frame after frame, until nothing is
// left. One goroutine sends at a time, as gRPC requires.
func (p *pipe) send(framesRead uint32, rs ...*pb.PipelineResult) {
	p.outMu.Lock()
	p.out = append(p.out, rs...)
	p.outFrames += framesRead
	if p.sending || p.sendErr != nil {
		p.outMu.Unlock()
		return
	}
	p.sending = true
	for len(p.out) > 0 || p.outFrames > 0 {
		// A response of at most about pipelineMaxResponseBytes, however
		// many results wait; a larger value goes alone. The message is
		// new each time: gRPC may hold it after Send returns.
		n, size := 0, 0
		for n < len(p.out) && (n == 0 || size+len(p.out[n].Value) <= pipelineMaxResponseBytes) {
			size += len(p.out[n].Value) + 16
			n++
		}
		batch, read := p.out[:n:n], p.outFrames
		p.out, p.outFrames = slices.Clone(p.out[n:]), 0
		p.outTaken.Broadcast()
		p.outMu.Unlock()
		err := p.stream.Send(&pb.PipelineResponse{Results: batch, FramesRead: read})
		p.outMu.Lock()
		if err != nil {
			p.sendErr = err
			p.out, p.outFrames = nil, 0
			p.outTaken.Broadcast()
			close(p.sendFailed)
		}
	}
	p.sending = false
	p.outMu.Unlock()
}
