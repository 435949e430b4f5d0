package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/replica"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Takeover. The copies this node holds of an origin's records are orphaned
// when the origin leaves this node's ring (it died, left, or was cut off) or
// comes back with another journal (it lost its disk). From that moment a
// miss reads them (departedPending), and the manager takes them over: the
// copies of partitions this node owns become its own pending writes
// (journal.Adopt, in one transaction with their removal), re-replicated to
// its own replicas and flushed by its flusher; the others are handed to
// their owners (Peer.Handover), which do the same. Taking over twice, or
// alongside an origin that flushes the same records after all, is harmless:
// databases keep the highest version (see docs/reliability.md).

// handoverTimeout bounds one Handover call: the receiver replicates what it
// adopts before it answers.
const handoverTimeout = 10 * time.Second

// isDeparted reports whether the copies of o are orphaned in ring r: o
// came back with another journal, or its node left the ring and has been
// silent since (presence.go). Nothing is orphaned before this node has
// joined its cluster: alone at start, it would take everyone for gone.
func (s *replication) isDeparted(r *ring.Ring, o journal.Origin) bool {
	if !s.e.ready.Load() {
		return false
	}
	if id, ok := s.ids.Load(o.Node); ok && id.(string) != o.ID {
		return true
	}
	return !r.Has(o.Node) && s.presence.departed(o.Node)
}

// refreshDeparted sets the flag that makes misses read orphaned copies.
func (s *replication) refreshDeparted(r *ring.Ring) {
	origins, err := s.j.ReplicaOrigins()
	if err != nil {
		s.departed.Store(true) // read them rather than miss any
		return
	}
	any := false
	for _, o := range origins {
		any = any || s.isDeparted(r, o)
	}
	s.departed.Store(any)
}

// TakeOverNow takes over the orphaned copies this node holds at once
// (FlushJournal runs it first, so a flush writes them too).
func (e *Engine) TakeOverNow(ctx context.Context) error {
	if e.repl == nil {
		return nil
	}
	return e.repl.takeOverDeparted(ctx)
}

// takeOverDeparted takes over the copies of every orphaned origin.
func (s *replication) takeOverDeparted(ctx context.Context) error {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	r := s.e.ring.Load()
	if r == nil {
		return nil
	}
	origins, err := s.j.ReplicaOrigins()
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range origins {
		if s.isDeparted(r, o) {
			if err := s.takeOver(ctx, r, o); err != nil {
				errs = append(errs, fmt.Errorf("take over the writes of %s: %w", o, err))
			}
		}
	}
	s.refreshDeparted(r)
	return errors.Join(errs...)
}

// takeOver adopts or hands over every copy of o, a page at a time.
func (s *replication) takeOver(ctx context.Context, r *ring.Ring, o journal.Origin) error {
	self := s.e.cfg.Self
	afterNS, afterKey := "", ""
	var adopted, handed int
	var errs []error
	for ctx.Err() == nil {
		copies, err := s.j.ReplicaCopies(o, afterNS, afterKey, replicationPage)
		if err != nil || len(copies) == 0 {
			errs = append(errs, err)
			break
		}
		last := copies[len(copies)-1]
		afterNS, afterKey = last.Namespace, last.Key
		groups, owners := byOwner(r, copies)
		for name, recs := range groups {
			if name == self {
				got, err := s.adopt(ctx, r, o, recs)
				adopted += len(got)
				errs = append(errs, err)
				continue
			}
			if err := s.handOver(ctx, owners[name], o, recs); err != nil {
				errs = append(errs, err)
				continue
			}
			handed += len(recs)
			if _, err := s.j.ApplyReplica(o, dropOps(recs)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if adopted+handed > 0 {
		s.takeovers.Add(1)
		s.e.log.Warn("took over the pending write-behind writes of a departed node",
			"origin", o.Node, "journal", o.ID, "adopted", adopted, "handed_to_owners", handed)
	}
	return errors.Join(errs...)
}

// adopt makes recs this node's own pending writes (dropping o's copies of
// them, if o is set), moves the clock past them and replicates them. It
// returns what it stored.
func (s *replication) adopt(ctx context.Context, r *ring.Ring, o journal.Origin, recs []journal.Record) ([]journal.Record, error) {
	adopted, err := s.j.Adopt(o, recs)
	if err != nil {
		return nil, err
	}
	var top uint64
	for _, a := range adopted {
		top = max(top, a.Version)
	}
	if err := s.e.ObserveClock(top); err != nil {
		s.e.log.Warn("adopted write-behind records carry versions ahead of this node's clock; later writes of their keys may lose to them", "err", err)
	}
	s.takenOver.Add(uint64(len(adopted)))
	if failed := s.replicateRecords(ctx, r, adopted); failed > 0 {
		s.mark(nil, true)
	}
	return adopted, nil
}

// replicateRecords copies recs, this node's own pending records, to their
// replicas and waits; it returns how many copies failed.
func (s *replication) replicateRecords(ctx context.Context, r *ring.Ring, recs []journal.Record) int {
	by := map[string][]journal.Record{}
	to := map[string]ring.Member{}
	for _, rec := range recs {
		_, target, _ := s.policies[rec.Namespace].copies(len(r.Members()))
		for _, m := range s.e.targets(r, r.PartitionOf(ring.Key(rec.Namespace, rec.Key)), target-1) {
			by[m.Name] = append(by[m.Name], rec)
			to[m.Name] = m
		}
	}
	var results []*replica.Result
	for name, rs := range by {
		results = append(results, s.links.Store(to[name], rs)...)
	}
	failed := 0
	for _, res := range results {
		if res.Wait(ctx) != nil {
			failed++
		}
	}
	return failed
}

// handOver gives recs (pending in origin o's journal) to their owner to.
func (s *replication) handOver(ctx context.Context, to ring.Member, o journal.Origin, recs []journal.Record) error {
	ctx, cancel := context.WithTimeout(ctx, handoverTimeout)
	defer cancel()
	req := &pb.HandoverRequest{From: s.e.cfg.Self, Hlc: s.e.cfg.Versions.Now(), Origin: o.Node, OriginJournalId: o.ID}
	for _, r := range recs {
		req.Records = append(req.Records, replica.ToProto(r))
	}
	resp, err := s.e.cfg.Peers.Handover(ctx, to, req)
	if err != nil {
		return fmt.Errorf("hand %d records over to %s: %w", len(recs), to.Name, err)
	}
	_ = s.e.ObserveClock(resp.GetHlc())
	s.handedOver.Add(uint64(len(recs)))
	return nil
}

// AdoptHandover serves Peer.Handover: the records become this node's own
// pending writes, replicated before the answer.
func (e *Engine) AdoptHandover(ctx context.Context, req *pb.HandoverRequest) (*pb.HandoverResponse, error) {
	s := e.repl
	if s == nil {
		return nil, fmt.Errorf("%w: this node has no write-behind journal to adopt records into", strategy.ErrNoBackend)
	}
	if err := e.ObserveClock(req.GetHlc()); err != nil {
		return nil, err
	}
	r := e.ring.Load()
	if r == nil {
		return nil, ErrNotReady
	}
	var o journal.Origin
	if req.GetOrigin() != "" {
		o = journal.Origin{Node: req.GetOrigin(), ID: req.GetOriginJournalId()}
	}
	recs := make([]journal.Record, len(req.GetRecords()))
	for i, p := range req.GetRecords() {
		recs[i] = replica.FromProto(p)
	}
	adopted, err := s.adopt(ctx, r, o, recs)
	if err != nil {
		return nil, err
	}
	return &pb.HandoverResponse{Hlc: e.cfg.Versions.Now(), Adopted: uint32(len(adopted))}, nil
}

// HandOver gives every pending write-behind record to the node that owns
// its partition once this node is gone (a graceful leave while the database
// is down): each receiver adopts and replicates them, then this node drops
// them. It returns how many it handed over; records it could not hand over
// stay pending.
func (e *Engine) HandOver(ctx context.Context) (int, error) {
	s := e.repl
	r := e.ring.Load()
	if s == nil || r == nil {
		return 0, nil
	}
	without, err := ring.New(e.cfg.Ring, e.others(r), 0)
	if err != nil {
		return 0, fmt.Errorf("no node to hand write-behind records to: %w", err)
	}
	var total int
	var errs []error
	var after uint64
	for ctx.Err() == nil {
		page, next, err := s.j.Scan(after, replicationPage)
		if err != nil || len(page) == 0 {
			errs = append(errs, err)
			break
		}
		after = next
		by, to := byOwner(without, page)
		for name, recs := range by {
			if err := s.handOver(ctx, to[name], s.self, recs); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := s.j.Ack(recs); err != nil {
				errs = append(errs, err)
				continue
			}
			total += len(recs)
			for _, rec := range recs { // copies elsewhere are moot now
				s.flushed(rec.Namespace, []strategy.Write{rec.Write()})
			}
		}
	}
	return total, errors.Join(errs...)
}

// StillPending serves Peer.StillPending: which of the records (keys and
// versions) this node still holds pending at that version or a newer one.
func (e *Engine) StillPending(_ context.Context, req *pb.StillPendingRequest) (*pb.StillPendingResponse, error) {
	s := e.repl
	if s == nil {
		return nil, fmt.Errorf("%w: this node has no write-behind journal", strategy.ErrNoBackend)
	}
	if err := e.ObserveClock(req.GetHlc()); err != nil {
		return nil, err
	}
	resp := &pb.StillPendingResponse{JournalId: s.self.ID, Pending: make([]bool, len(req.GetRecords()))}
	for i, p := range req.GetRecords() {
		rec, ok, err := s.j.Pending(p.GetNamespace(), p.GetKey())
		if err != nil {
			return nil, err
		}
		resp.Pending[i] = ok && rec.Version >= p.GetVersion()
	}
	resp.Hlc = e.cfg.Versions.Now()
	return resp, nil
}

func dropOps(recs []journal.Record) []journal.ReplicaOp {
	ops := make([]journal.ReplicaOp, len(recs))
	for i, r := range recs {
		ops[i] = journal.ReplicaOp{Record: journal.Record{Namespace: r.Namespace, Key: r.Key, Version: r.Version}, Drop: true}
	}
	return ops
}

// byOwner groups recs by their keys' owners in r, and names the owners.
func byOwner(r *ring.Ring, recs []journal.Record) (map[string][]journal.Record, map[string]ring.Member) {
	groups, owners := map[string][]journal.Record{}, map[string]ring.Member{}
	for _, rec := range recs {
		m := r.Owner(ring.Key(rec.Namespace, rec.Key))
		groups[m.Name] = append(groups[m.Name], rec)
		owners[m.Name] = m
	}
	return groups, owners
}
