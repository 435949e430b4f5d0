package admin

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/engine"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Admin RPCs of the write-behind journal (ringcachectl journal).

func (s *Server) noJournal() error {
	return status.Error(codes.FailedPrecondition, "this node has no write-behind namespace, so no journal")
}

func (s *Server) Journal(context.Context, *pb.JournalRequest) (*pb.JournalResponse, error) {
	resp := &pb.JournalResponse{Node: s.cfg.Name}
	if s.cfg.Journal == nil {
		return resp, nil
	}
	st, err := s.cfg.Journal.Stats()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read journal stats: %v", err)
	}
	fs := s.cfg.Flusher.Stats()
	resp.Enabled = true
	resp.Pending, resp.PendingBytes = uint64(st.Pending), uint64(st.PendingBytes)
	resp.DeadLetters, resp.Appends, resp.Coalesced = uint64(st.DeadLetters), st.Appends, st.Coalesced
	resp.Flushed, resp.FlushFailures = fs.Flushed, fs.Failures
	if !st.Oldest.IsZero() {
		resp.OldestPendingAgeMs = s.now().Sub(st.Oldest).Milliseconds()
	}
	resp.MaxPending, resp.MaxBytes = uint64(st.MaxPending), uint64(st.MaxBytes)
	if err := s.replication(resp); err != nil {
		return nil, status.Errorf(codes.Internal, "read replica stats: %v", err)
	}
	return resp, nil
}

// replication fills the replication fields of a JournalResponse.
func (s *Server) replication(resp *pb.JournalResponse) error {
	rs, err := s.cfg.Journal.ReplicaStats()
	if err != nil {
		return err
	}
	es := s.cfg.Engine.ReplicationStats()
	resp.ReplicaPending, resp.ReplicaBytes = uint64(rs.Pending), uint64(rs.Bytes)
	resp.TakenOver, resp.Takeovers, resp.HandedOver = es.TakenOver, es.Takeovers, es.HandedOver
	resp.UnderReplicated, resp.ReplicationInSync = es.UnderReplicated, es.InSync
	resp.Replicated, resp.ReplicationFailures = es.Links.Stored, es.Links.FailedFrames
	resp.ReplicationFrames = es.Links.Frames
	resp.ReplicationP50Us, resp.ReplicationP99Us = es.Links.P50.Microseconds(), es.Links.P99.Microseconds()
	resp.JournalId = es.JournalID
	for _, o := range rs.Origins {
		resp.ReplicaOrigins = append(resp.ReplicaOrigins, &pb.ReplicaOrigin{
			Node: o.Node, JournalId: o.ID, Records: uint64(o.Records), Departed: s.cfg.Engine.Departed(o.Origin)})
	}
	return nil
}

func (s *Server) FlushJournal(ctx context.Context, _ *pb.FlushJournalRequest) (*pb.FlushJournalResponse, error) {
	if s.cfg.Flusher == nil {
		return nil, s.noJournal()
	}
	before := s.cfg.Flusher.Stats().Flushed
	// The copies of departed nodes become this node's own writes first,
	// so the flush writes them too.
	if err := s.cfg.Engine.TakeOverNow(ctx); err != nil {
		return nil, status.Errorf(codes.Unavailable, "take over the writes of departed nodes: %v", err)
	}
	if err := s.cfg.Flusher.Flush(ctx); err != nil {
		return nil, status.Errorf(codes.Unavailable, "flush incomplete: %v", err)
	}
	st, err := s.cfg.Journal.Stats()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read journal stats: %v", err)
	}
	return &pb.FlushJournalResponse{Flushed: s.cfg.Flusher.Stats().Flushed - before, Pending: uint64(st.Pending)}, nil
}

func (s *Server) DeadLetters(_ context.Context, req *pb.DeadLettersRequest) (*pb.DeadLettersResponse, error) {
	if s.cfg.Journal == nil {
		return nil, s.noJournal()
	}
	limit := int(req.Limit)
	if limit == 0 {
		limit = 100
	}
	recs, err := s.cfg.Journal.DeadLetters(limit)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "read dead letters: %v", err)
	}
	resp := &pb.DeadLettersResponse{}
	for _, r := range recs {
		resp.DeadLetters = append(resp.DeadLetters, &pb.DeadLetter{
			Namespace: r.Namespace, Key: r.Key, Delete: r.Delete, Version: r.Version,
			Attempts: r.Attempts, LastError: r.LastError, ValueBytes: uint64(len(r.Value)),
		})
	}
	return resp, nil
}

func (s *Server) RetryDeadLetter(_ context.Context, req *pb.RetryDeadLetterRequest) (*pb.RetryDeadLetterResponse, error) {
	if s.cfg.Journal == nil {
		return nil, s.noJournal()
	}
	if err := s.cfg.Journal.Revive(req.Namespace, req.Key); err != nil {
		return nil, engine.StatusErr(err)
	}
	return &pb.RetryDeadLetterResponse{}, nil
}

func (s *Server) DropDeadLetter(_ context.Context, req *pb.DropDeadLetterRequest) (*pb.DropDeadLetterResponse, error) {
	if s.cfg.Journal == nil {
		return nil, s.noJournal()
	}
	if err := s.cfg.Journal.Drop(req.Namespace, req.Key); err != nil {
		return nil, engine.StatusErr(err)
	}
	return &pb.DropDeadLetterResponse{}, nil
}
