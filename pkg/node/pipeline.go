package node

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// Pipeline serves many calls over one stream. An op that can be answered
// from memory (a hit on its owner, a cache-aside write) is answered in the
// response to its own frame; one that must wait runs on a goroutine of its
// own and is answered in a later frame. When the node drains, the stream
// answers every op it has read and then ends with the node's not-ready
// status, which tells the client that the ops it sent after those were not
// applied and may go to another node.
//
// There is no sender goroutine: whoever has results (the frame reader, or
// an op finishing) sends them, together with any others that gathered
// while another send was in progress, which saves a goroutine handoff per
// frame.
func (s *cacheServer) Pipeline(stream pb.Cache_PipelineServer) error {
	n := s.n
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	p := &pipe{n: n, ctx: ctx, stream: stream, sendFailed: make(chan struct{}), waiting: make(chan struct{}, pipelineMaxWaiting)}
	p.outTaken = sync.NewCond(&p.outMu)
	recvDone := make(chan error, 1)
	go func() { recvDone <- p.recvLoop() }()

	var err error
wait:
	for {
		changed := n.ringNotes.wait()
		if n.closing.Load() {
			err = toStatus(ErrNotReady)
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
	n   *Node
	ctx context.Context

	// mu orders frame processing against stop: once stopped is set, no
	// further op starts.
	mu      sync.Mutex
	stopped bool
	ops     sync.WaitGroup // ops that wait
	waiting chan struct{}  // semaphore of pipelineMaxWaiting

	stream     pb.Cache_PipelineServer
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
		if len(req.Ops) > p.n.cfg.MaxBatchKeys {
			return status.Errorf(codes.InvalidArgument, "pipeline frame carries %d ops, at most %d per frame", len(req.Ops), p.n.cfg.MaxBatchKeys)
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return nil
		}
		p.ops.Add(1) // until the answers are sent: the handler waits for them
		p.n.stats.pipelineFrames.Add(1)
		p.n.stats.pipelineOps.Add(uint64(len(req.Ops)))
		answered := make([]*pb.PipelineResult, 0, len(req.Ops))
		for _, op := range req.Ops {
			if r := p.serveGuarded(op); r != nil {
				answered = append(answered, r)
			}
		}
		p.mu.Unlock()
		p.send(1, answered...)
		p.ops.Done()
	}
}

// serve answers op from memory and returns its result, or starts it on a
// goroutine (whose result is sent later) and returns nil.
func (p *pipe) serve(op *pb.PipelineOp) *pb.PipelineResult {
	n := p.n
	switch o := op.Op.(type) {
	case *pb.PipelineOp_Get:
		ns, err := n.namespace(o.Get.Namespace)
		if err != nil {
			return errPipeResult(op.Id, err)
		}
		owner, err := n.owner(o.Get.Namespace, o.Get.Key)
		if err != nil {
			return errPipeResult(op.Id, err)
		}
		if owner.Name == n.cfg.Name {
			v, found, answered, err := ns.Peek(o.Get.Key) // checks the key
			if err != nil {
				return errPipeResult(op.Id, err)
			}
			if answered {
				return &pb.PipelineResult{Id: op.Id, Found: found, Value: v}
			}
		} else if err := ns.ValidateKey(o.Get.Key); err != nil {
			return errPipeResult(op.Id, err) // before it costs a forward
		} else if v, found, ok := n.hotGet(o.Get.Namespace, o.Get.Key, owner); ok {
			return &pb.PipelineResult{Id: op.Id, Found: found, Value: v}
		}
		if owner.Name == n.cfg.Name { // a miss that loads: Peek has counted the Get
			p.wait(op, func(ctx context.Context) ([]byte, bool, error) { return ns.Load(ctx, o.Get.Key) })
			break
		}
		p.forward(op, o.Get.Namespace, o.Get.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Get{Get: o.Get}})
	case *pb.PipelineOp_Set:
		ns, err := n.checkSet(o.Set)
		if err != nil {
			return errPipeResult(op.Id, err)
		}
		if r, ok := p.writeHere(op.Id, o.Set.Namespace, o.Set.Key, !ns.WritesWait() && o.Set.LeaseToken == 0, func() error {
			return ns.Set(p.ctx, o.Set.Key, o.Set.Value, o.Set.Ttl.AsDuration())
		}); ok {
			return r
		}
		p.forward(op, o.Set.Namespace, o.Set.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Set{Set: o.Set}})
	case *pb.PipelineOp_Delete:
		ns, err := n.checkKey(o.Delete.Namespace, o.Delete.Key)
		if err != nil {
			return errPipeResult(op.Id, err)
		}
		if r, ok := p.writeHere(op.Id, o.Delete.Namespace, o.Delete.Key, !ns.WritesWait(), func() error {
			return ns.Delete(p.ctx, o.Delete.Key)
		}); ok {
			return r
		}
		p.forward(op, o.Delete.Namespace, o.Delete.Key, &pb.ForwardRequest{Op: &pb.ForwardRequest_Delete{Delete: o.Delete}})
	default:
		return errPipeResult(op.Id, status.Error(codes.InvalidArgument, "pipeline op carries no get, set or delete"))
	}
	return nil
}

// serveGuarded is serve with a panic turned into the op's INTERNAL error,
// as the unary interceptor does for a unary call.
func (p *pipe) serveGuarded(op *pb.PipelineOp) (r *pb.PipelineResult) {
	defer func() {
		if v := recover(); v != nil {
			r = p.panicked(op.Id, v)
		}
	}()
	return p.serve(op)
}

func (p *pipe) panicked(id uint64, v any) *pb.PipelineResult {
	p.n.log.Error("pipeline op panicked", "panic", v, "stack", string(debug.Stack()))
	return &pb.PipelineResult{Id: id, ErrorCode: int32(codes.Internal), ErrorMessage: "internal error in ringcache.v1.Cache/Pipeline"}
}

// writeHere applies a write at once when it needs no I/O and this node owns
// the key; ok reports whether it did.
func (p *pipe) writeHere(id uint64, ns, key string, inMemory bool, apply func() error) (*pb.PipelineResult, bool) {
	if !inMemory {
		return nil, false
	}
	owner, err := p.n.owner(ns, key)
	if err != nil {
		return errPipeResult(id, err), true
	}
	if owner.Name != p.n.cfg.Name {
		return nil, false
	}
	if err := apply(); err != nil {
		return errPipeResult(id, err), true
	}
	return &pb.PipelineResult{Id: id}, true
}

// forward runs fwd as the unary call would (serve here or forward to the
// owner) on a goroutine.
func (p *pipe) forward(op *pb.PipelineOp, ns, key string, fwd *pb.ForwardRequest) {
	p.wait(op, func(ctx context.Context) ([]byte, bool, error) {
		resp, err := p.n.route(ctx, ns, key, fwd)
		g := resp.GetGet() // nil-safe: a Set or Delete answers found=false
		return g.GetValue(), g.GetFound(), err
	})
}

// wait runs an op that must wait on a goroutine, within the op's timeout
// (capped by the node's forward timeout), and sends its result. While
// pipelineMaxWaiting ops wait, it blocks the frame reader.
func (p *pipe) wait(op *pb.PipelineOp, run func(ctx context.Context) ([]byte, bool, error)) {
	timeout := p.n.cfg.ForwardTimeout
	if t := op.Timeout.AsDuration(); op.Timeout != nil && t > 0 && t < timeout {
		timeout = t
	}
	id := op.Id
	p.n.stats.pipelineWaits.Add(1)
	p.waiting <- struct{}{}
	p.ops.Add(1)
	go func() {
		defer func() { <-p.waiting; p.ops.Done() }()
		defer func() {
			if v := recover(); v != nil {
				p.send(0, p.panicked(id, v))
			}
		}()
		ctx, cancel := context.WithTimeout(p.ctx, timeout)
		defer cancel()
		v, found, err := run(ctx)
		if err != nil {
			p.send(0, errPipeResult(id, err))
			return
		}
		p.send(0, &pb.PipelineResult{Id: id, Found: found, Value: v})
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

func errPipeResult(id uint64, err error) *pb.PipelineResult {
	st := status.Convert(toStatus(err))
	return &pb.PipelineResult{Id: id, ErrorCode: int32(st.Code()), ErrorMessage: st.Message()}
}
