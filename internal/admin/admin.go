// Package admin is the operator plane behind ringcachectl: the Admin gRPC
// service (members, ring, locate, stats, the write-behind journal, gossip
// keys, and namespace flushes). It only reads a node's parts and calls their operations; it
// routes nothing.
//
// Stats builds the one snapshot of a node's counters; the Prometheus
// metrics read the same snapshot, so the two cannot drift.
package admin

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/hotcache"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Config is what the Admin service reads. Name, Members, Keyring, Engine,
// Services, Store and Clock are required; Hot, Journal and Flusher are nil
// when the node has none.
type Config struct {
	Name    string
	Members func() []membership.Member
	// Keyring returns the node's gossip keyring; it is called by the
	// gossip key RPCs only, once the node serves.
	Keyring func() Keyring
	// KeyFile is the node's --gossip-key-file, rewritten after each keyring
	// change; empty: none.
	KeyFile  string
	Engine   *engine.Engine
	Services *service.Services
	Store    *store.Store
	Clock    *hlc.Clock
	// Now is the node's wall clock; nil means time.Now.
	Now     func() time.Time
	Hot     *hotcache.Cache
	Journal *journal.Journal
	Flusher *journal.Flusher
	// Logger receives keyring changes; nil discards.
	Logger *slog.Logger
}

// now is the node's clock.
func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// Server implements pb.AdminServer.
type Server struct {
	pb.UnimplementedAdminServer
	cfg   Config
	keyMu sync.Mutex // serializes keyring changes and key file writes
}

func (s *Server) log() *slog.Logger {
	if s.cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.cfg.Logger
}

// New returns the Admin service.
func New(cfg Config) *Server { return &Server{cfg: cfg} }

var memberStates = map[membership.State]pb.MemberState{
	membership.StateAlive: pb.MemberState_MEMBER_STATE_ALIVE,
	membership.StateDead:  pb.MemberState_MEMBER_STATE_DEAD,
	membership.StateLeft:  pb.MemberState_MEMBER_STATE_LEFT,
}

// Members implements pb.AdminServer.
func (s *Server) Members(context.Context, *pb.MembersRequest) (*pb.MembersResponse, error) {
	resp := &pb.MembersResponse{Self: s.cfg.Name}
	for _, m := range s.cfg.Members() {
		resp.Members = append(resp.Members, &pb.Member{
			Name: m.Name, GrpcAddr: m.GRPCAddr, GossipAddr: m.GossipAddr, State: memberStates[m.State],
		})
	}
	return resp, nil
}

// Ring implements pb.AdminServer.
func (s *Server) Ring(context.Context, *pb.RingRequest) (*pb.RingResponse, error) {
	r := s.cfg.Engine.Ring()
	if r == nil {
		return nil, engine.StatusErr(engine.ErrNotReady)
	}
	resp := &pb.RingResponse{
		Version:         r.Version(),
		PartitionCount:  uint32(r.PartitionCount()),
		PartitionOwners: make([]string, r.PartitionCount()),
		LoadFactor:      r.LoadFactor(),
	}
	for p := range resp.PartitionOwners {
		resp.PartitionOwners[p] = r.PartitionOwner(p).Name
	}
	for _, m := range r.Members() {
		resp.Members = append(resp.Members, &pb.RingMember{Name: m.Name, GrpcAddr: m.Addr, Partitions: uint32(r.Partitions(m.Name))})
	}
	return resp, nil
}

// Locate implements pb.AdminServer.
func (s *Server) Locate(_ context.Context, req *pb.LocateRequest) (*pb.LocateResponse, error) {
	ns, err := s.cfg.Engine.Namespace(req.Namespace)
	if err != nil {
		return nil, engine.StatusErr(err)
	}
	if err := ns.ValidateKey(req.Key); err != nil {
		return nil, engine.StatusErr(err)
	}
	r := s.cfg.Engine.Ring()
	if r == nil {
		return nil, engine.StatusErr(engine.ErrNotReady)
	}
	rk := strategy.StoreKey(req.Namespace, req.Key)
	o := r.Owner(rk)
	return &pb.LocateResponse{Partition: uint32(r.PartitionOf(rk)), Owner: o.Name, OwnerGrpcAddr: o.Addr}, nil
}

// Stats implements pb.AdminServer.
func (s *Server) Stats(context.Context, *pb.StatsRequest) (*pb.StatsResponse, error) {
	return s.Snapshot(), nil
}

// Snapshot returns the node's counters: the Stats RPC's answer, and what
// the metrics observe.
func (s *Server) Snapshot() *pb.StatsResponse {
	st := s.cfg.Store.Stats()
	es := s.cfg.Engine.Stats()
	resp := &pb.StatsResponse{
		Node:          s.cfg.Name,
		Store:         &pb.StoreStats{Entries: st.Entries, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions},
		Forwards:      es.Forwards,
		ForwardErrors: es.ForwardErrors,
		ForwardedIn:   es.ForwardedIn,
	}
	ps := s.cfg.Services.Stats()
	resp.PipelineFrames, resp.PipelineOps, resp.PipelineWaits = ps.PipelineFrames, ps.PipelineOps, ps.PipelineWaits
	resp.ClockRejections = s.cfg.Clock.Rejected()
	resp.RssBytes, resp.MemoryLimitBytes = processRSS(), memoryLimit()
	if s.cfg.Hot != nil {
		h := s.cfg.Hot.Stats()
		resp.HotCache = &pb.HotCacheStats{
			Hits: h.Hits, Fills: h.Fills, Invalidations: h.Invalidations, Resets: h.Resets,
			Entries: h.Entries, Bytes: h.Bytes, MaxBytes: h.MaxBytes, Streams: h.Streams,
		}
	}
	names := s.cfg.Engine.Names()
	for i, ns := range s.cfg.Engine.NamespaceStats() {
		resp.Namespaces = append(resp.Namespaces, namespaceStats(names[i], ns))
	}
	return resp
}

// namespaceStats is the one mapping of a namespace's counters.
func namespaceStats(name string, ns strategy.Stats) *pb.NamespaceStats {
	return &pb.NamespaceStats{
		Name: name, Gets: ns.Gets, Hits: ns.Hits, Misses: ns.Misses,
		Loads: ns.Loads, LoadsDeduplicated: ns.LoadsDeduped, LoadErrors: ns.LoadErrors,
		NegativeHits: ns.NegativeHits, Sets: ns.Sets, Deletes: ns.Deletes,
		WriteErrors: ns.WriteErrors, Backpressure: ns.Backpressure, Refreshes: ns.Refreshes,
		RefreshesSkipped: ns.RefreshesSkipped, PendingHits: ns.PendingHits,
		LeasesGranted: ns.LeasesGranted, LeaseWaits: ns.LeaseWaits, LeaseRejected: ns.LeaseRejected,
		LoadsWaiting: ns.LoadsWaiting, LoadsRunning: ns.LoadsRunning, LoadsRefused: ns.LoadsRefused,
		XfetchRefreshes: ns.XFetchRefreshes, Flushes: ns.Flushes,
	}
}
