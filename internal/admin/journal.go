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
	return resp, nil
}

func (s *Server) FlushJournal(ctx context.Context, _ *pb.FlushJournalRequest) (*pb.FlushJournalResponse, error) {
	if s.cfg.Flusher == nil {
		return nil, s.noJournal()
	}
	before := s.cfg.Flusher.Stats().Flushed
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
