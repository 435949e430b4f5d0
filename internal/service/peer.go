package service

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Peer is the internal node-to-node service. The receiver of a forwarded
// op serves it whatever its own table says, unless that table is newer
// than the one the sender routed by and another member owns the op's
// partition in it: then the op goes on to that member (engine.Execute).
type Peer struct {
	pb.UnimplementedPeerServer
	s *Services
}

// forwardParallelism bounds the ops of one forwarded batch that wait at
// once (its sender bounds its batches in flight).
const forwardParallelism = 64

// Forward implements pb.PeerServer: the ops of one batch, each answered in
// the result of the same index.
func (p *Peer) Forward(ctx context.Context, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	e := p.s.e
	if len(req.Ops) > MaxForwardedOps {
		return nil, engine.StatusErr(fmt.Errorf("%w: %d ops forwarded, at most %d per call", engine.ErrTooManyKeys, len(req.Ops), MaxForwardedOps))
	}
	if err := e.ObserveClock(req.Hlc); err != nil {
		p.s.log.Warn("forwarded ops rejected: the sender's clock is too far ahead", "from", req.From, "err", err)
		return nil, engine.StatusErr(err)
	}
	p.s.cfg.Tables.Follow(req.From, req.TableVersion)
	ops := make([]engine.Op, len(req.Ops))
	valid := make([]bool, len(req.Ops))
	for i, o := range req.Ops {
		ops[i], valid[i] = engine.OpFromProto(o)
	}
	results := make([]*pb.PipelineResult, len(req.Ops))
	var g errgroup.Group
	g.SetLimit(forwardParallelism)
	c := CallerFrom(ctx)
	c.Forwarded, c.TableVersion = true, req.TableVersion
	e.Execute(ctx, c, ops, func(i int, r engine.Result) {
		if !valid[i] {
			r = engine.Result{Err: engine.ErrNoOp}
		}
		results[i] = r.Proto(req.Ops[i].Id)
	}, func(f func()) { g.Go(func() error { f(); return nil }) })
	_ = g.Wait()
	return &pb.ForwardResponse{Results: results, Hlc: e.Versions()}, nil
}

// ForwardStream implements pb.PeerServer: the batches a peer forwards,
// served as Cache.Pipeline serves a client's frames, with the sender's
// clock observed on every frame and this node's on every response. A
// draining node keeps serving it (peers route here until they learn of the
// leave) until engine.StopForwardStreams.
func (p *Peer) ForwardStream(stream pb.Peer_ForwardStreamServer) error {
	c := CallerFrom(stream.Context())
	c.Forwarded = true
	return p.s.pipeline(stream.Context(), &forwardFrames{s: p.s, stream: stream}, c, p.s.e.ForwardStreamsStopped)
}

// forwardFrames is a ForwardStream as the frames a pipe reads and answers.
type forwardFrames struct {
	s       *Services
	stream  pb.Peer_ForwardStreamServer
	version uint64 // the table version of the frame read last
}

// tableVersion is the version of the table the sender routed the frame
// read last by (engine.Caller.TableVersion).
func (f *forwardFrames) tableVersion() uint64 { return f.version }

func (f *forwardFrames) Recv() (*pb.PipelineRequest, error) {
	req, err := f.stream.Recv()
	if err != nil {
		return nil, err
	}
	if err := f.s.e.ObserveClock(req.Hlc); err != nil {
		f.s.log.Warn("forward stream ended: the sender's clock is too far ahead", "from", req.From, "err", err)
		return nil, engine.StatusErr(err)
	}
	f.s.cfg.Tables.Follow(req.From, req.TableVersion)
	f.version = req.TableVersion
	return &pb.PipelineRequest{Ops: req.Ops}, nil
}

func (f *forwardFrames) Send(r *pb.PipelineResponse) error {
	return f.stream.Send(&pb.ForwardStreamResponse{Hlc: f.s.e.Versions(), Results: r.Results, FramesRead: r.FramesRead})
}

// Lookup implements pb.PeerServer: this node's own pending write-behind
// write of a key, for a new owner of its partition.
func (p *Peer) Lookup(ctx context.Context, req *pb.LookupRequest) (*pb.LookupResponse, error) {
	e := p.s.e
	if err := e.ObserveClock(req.Hlc); err != nil {
		return nil, engine.StatusErr(err)
	}
	w, ok, err := e.LocalPending(ctx, req.Namespace, req.Key)
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	resp := &pb.LookupResponse{Hlc: e.Versions()}
	if ok {
		resp.Pending, resp.Found, resp.Value, resp.Version = true, !w.Delete, w.Value, w.Version
	}
	return resp, nil
}

// Merged implements pb.PeerServer: the sender took this node back into its
// ring; this node drops its cached entries (engine.MergedFrom).
func (p *Peer) Merged(_ context.Context, req *pb.MergedRequest) (*pb.MergedResponse, error) {
	e := p.s.e
	if err := e.ObserveClock(req.Hlc); err != nil {
		return nil, engine.StatusErr(err)
	}
	if err := e.MergedFrom(req.From); err != nil {
		return nil, engine.StatusErr(err)
	}
	return &pb.MergedResponse{Hlc: e.Versions()}, nil
}

// GetTable implements pb.PeerServer: the partition table this node routes
// by.
func (p *Peer) GetTable(context.Context, *pb.GetTableRequest) (*pb.GetTableResponse, error) {
	t := p.s.cfg.Tables.Table()
	if t == nil {
		return nil, engine.StatusErr(engine.ErrNotReady)
	}
	return &pb.GetTableResponse{Table: t}, nil
}

// PushTable implements pb.PeerServer: the coordinator offers a table.
func (p *Peer) PushTable(_ context.Context, req *pb.PushTableRequest) (*pb.PushTableResponse, error) {
	if t := req.GetTable(); t != nil {
		if err := p.s.e.ObserveClock(t.Hlc); err != nil {
			return nil, engine.StatusErr(err)
		}
	}
	v, err := p.s.cfg.Tables.Receive(req.GetTable())
	if err != nil {
		return nil, engine.StatusErr(fmt.Errorf("%w: %w", strategy.ErrInvalidArgument, err))
	}
	return &pb.PushTableResponse{Version: v}, nil
}

// Replicate implements pb.PeerServer: copies of another node's write-behind
// records, stored in this node's journal before each frame is answered.
func (p *Peer) Replicate(stream pb.Peer_ReplicateServer) error {
	return engine.StatusErr(p.s.e.ServeReplicas(stream))
}

// Handover implements pb.PeerServer: write-behind records this node now
// owns, adopted and replicated before the answer.
func (p *Peer) Handover(ctx context.Context, req *pb.HandoverRequest) (*pb.HandoverResponse, error) {
	resp, err := p.s.e.AdoptHandover(ctx, req)
	if err != nil {
		p.s.log.Warn("handover refused", "from", req.GetFrom(), "records", len(req.GetRecords()), "err", err)
		return nil, engine.StatusErr(err)
	}
	return resp, nil
}

// StillPending implements pb.PeerServer: which replicated records this
// node still holds pending.
func (p *Peer) StillPending(ctx context.Context, req *pb.StillPendingRequest) (*pb.StillPendingResponse, error) {
	resp, err := p.s.e.StillPending(ctx, req)
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	return resp, nil
}

// Transfer implements pb.PeerServer: the cached entries this node holds
// for partitions the caller took from it (warm hand-over).
func (p *Peer) Transfer(req *pb.TransferRequest, stream pb.Peer_TransferServer) error {
	if err := p.s.e.ServeTransfer(stream.Context(), req, stream.Send); err != nil {
		return engine.StatusErr(err)
	}
	return nil
}

// TransferLookup implements pb.PeerServer: one held entry, for a miss of
// the partition's new owner.
func (p *Peer) TransferLookup(_ context.Context, req *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error) {
	resp, err := p.s.e.TransferLookup(req)
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	return resp, nil
}
