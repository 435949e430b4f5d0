// Package service is a node's gRPC front doors to the engine: the public
// Cache service (unary calls, the Pipeline stream, the ring and
// invalidation streams) and the internal Peer service. Each turns calls
// into engine.Ops and runs them through engine.Execute, and turns results
// and errors into responses and statuses (engine.Status); none routes or
// serves a key itself.
//
// A client cannot hold the node up by not reading: every stream's send has
// a deadline (deadline.go), and the invalidation fan-out costs a Set the
// same however many subscribers there are and however slowly they read,
// bounded in subscribers and in bytes (hub.go).
package service

import (
	"log/slog"
	"sync/atomic"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/engine"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// DefaultMaxBatch bounds the keys of one GetMany and the ops of one
// Pipeline frame.
const DefaultMaxBatch = 1000

// MaxForwardedOps bounds the ops of one batch a peer forwards (Forward, a
// ForwardStream frame), whatever this node's MaxBatch: a peer's batches are
// bounded by its own MaxBatch, which may differ from this node's (a rolling
// change of --max-batch-keys), and refusing them would fail its clients'
// calls. No node's MaxBatch may exceed it.
const MaxForwardedOps = 1 << 16

// Config configures the services.
type Config struct {
	Engine *engine.Engine
	// Hub fans out the keys that change on this node to
	// WatchInvalidations subscribers; the engine publishes to it.
	Hub *Hub
	// MaxBatch is DefaultMaxBatch when 0. The Go client sends at most 512
	// ops per Pipeline frame, so keep it at 512 or more.
	MaxBatch int
	// Auth authorizes the streams that are not ops (WatchInvalidations);
	// nil allows all. Ops are authorized in the engine.
	Auth *auth.Authorizer
	// Tables serves the partition table protocol (Peer.GetTable,
	// Peer.PushTable); the node implements it.
	Tables Tables
	Logger *slog.Logger
}

// Tables is the node's side of the partition table protocol.
type Tables interface {
	// Table returns the table the node routes by.
	Table() *pb.Table
	// Receive offers the node a table and returns the version it routes
	// by afterwards.
	Receive(t *pb.Table) (uint64, error)
	// Follow brings the node to the table of version v, by which the peer
	// from forwarded ops, before they are served, when the node routes by
	// an older one (table.Coordinator.Follow).
	Follow(from string, v uint64)
}

// Services are the Cache and Peer services of one node.
type Services struct {
	cfg   Config
	e     *engine.Engine
	log   *slog.Logger
	stats counters
}

type counters struct {
	// Pipeline: frames read, ops read, and ops that had to wait (a load,
	// a forward, a database or journal write) rather than being answered
	// from memory in the response to their frame.
	frames, ops, waits atomic.Uint64
}

// New returns the services.
func New(cfg Config) *Services {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Services{cfg: cfg, e: cfg.Engine, log: cfg.Logger}
}

// Cache returns the Cache service.
func (s *Services) Cache() *Cache { return &Cache{s: s} }

// Peer returns the Peer service.
func (s *Services) Peer() *Peer { return &Peer{s: s} }

// Stats are the Pipeline counters since start.
type Stats struct {
	PipelineFrames, PipelineOps, PipelineWaits uint64
}

// Stats returns the counters.
func (s *Services) Stats() Stats {
	return Stats{PipelineFrames: s.stats.frames.Load(), PipelineOps: s.stats.ops.Load(), PipelineWaits: s.stats.waits.Load()}
}
