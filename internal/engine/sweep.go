package engine

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// The sweep. A copy is dropped when its origin reports the record flushed
// (a drop in a replication frame), but such a report can be lost (the
// stream broke, the replicas moved since the record was copied, the
// origin's own append failed). So every SweepInterval the node asks the
// origin of each copy older than SweepAge whether it still holds that
// record pending (Peer.StillPending), and drops the copies it does not. A
// copy that young may belong to a write whose local append has not
// committed yet, so it is never asked about. An answer from another
// journal than the copies' means the origin lost its disk: its copies are
// taken over instead.

// stillPendingTimeout bounds one StillPending call.
const stillPendingTimeout = 5 * time.Second

func (s *replication) sweep(ctx context.Context) {
	r := s.e.ring.Load()
	if r == nil {
		return
	}
	origins, err := s.j.ReplicaOrigins()
	if err != nil {
		return
	}
	cutoff := s.e.cfg.Now().Add(-s.e.cfg.Replication.SweepAge)
	for _, o := range origins {
		if s.isDeparted(r, o) {
			continue // the takeover's
		}
		if !r.Has(o.Node) {
			if s.presence.unknown(o.Node) && !s.readySince.IsZero() && time.Since(s.readySince) >= s.e.cfg.Replication.SweepAge {
				s.salvage(ctx, o)
			}
			continue
		}
		var to ring.Member
		for _, m := range r.Members() {
			if m.Name == o.Node {
				to = m
			}
		}
		dropped, err := s.sweepOrigin(ctx, to, o, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			s.e.log.Debug("sweep of replica copies stopped", "origin", o.Node, "err", err)
		case dropped > 0:
			s.e.log.Info("dropped replica copies their origin no longer holds pending", "origin", o.Node, "copies", dropped)
		}
	}
}

// sweepOrigin asks to about the copies of o older than cutoff and drops
// those it no longer holds; it returns how many it dropped.
func (s *replication) sweepOrigin(ctx context.Context, to ring.Member, o journal.Origin, cutoff time.Time) (int, error) {
	afterNS, afterKey := "", ""
	dropped := 0
	for ctx.Err() == nil {
		copies, err := s.j.ReplicaCopies(o, afterNS, afterKey, replicationPage)
		if err != nil || len(copies) == 0 {
			return dropped, err
		}
		last := copies[len(copies)-1]
		afterNS, afterKey = last.Namespace, last.Key
		var old []journal.Record
		req := &pb.StillPendingRequest{From: s.e.cfg.Self, Hlc: s.e.cfg.Versions.Now()}
		for _, c := range copies {
			if c.Appended.Before(cutoff) {
				old = append(old, c)
				req.Records = append(req.Records, &pb.ReplicaRecord{Namespace: c.Namespace, Key: c.Key, Version: c.Version})
			}
		}
		if len(old) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, stillPendingTimeout)
		resp, err := s.e.cfg.Peers.StillPending(cctx, to, req)
		cancel()
		if err != nil {
			return dropped, err
		}
		_ = s.e.ObserveClock(resp.GetHlc())
		if id := resp.GetJournalId(); id != "" && id != o.ID {
			s.sawJournal(o.Node, id) // it lost its disk: the takeover's now
			return dropped, nil
		}
		var gone []journal.Record
		for i, c := range old {
			if i < len(resp.GetPending()) && !resp.GetPending()[i] {
				gone = append(gone, c)
			}
		}
		if len(gone) > 0 {
			if _, err := s.j.ApplyReplica(o, dropOps(gone)); err != nil {
				return dropped, err
			}
			dropped += len(gone)
		}
	}
	return dropped, ctx.Err()
}

// salvage writes the copies of o, a node never in this node's ring since
// it started (it went away while this node was down), to the database and
// drops them. Their origin's other replicas took them over if it died
// while they were up; these copies matter only when this node was its last
// replica alive. They are written with their versions, so a copy older than
// a row stays out, but never read: they may be older than writes other
// nodes made since, and flushed.
func (s *replication) salvage(ctx context.Context, o journal.Origin) {
	written := 0
	afterNS, afterKey := "", ""
	for ctx.Err() == nil {
		copies, err := s.j.ReplicaCopies(o, afterNS, afterKey, replicationPage)
		if err != nil || len(copies) == 0 {
			break
		}
		last := copies[len(copies)-1]
		afterNS, afterKey = last.Namespace, last.Key
		byNS := map[string][]journal.Record{}
		for _, c := range copies {
			byNS[c.Namespace] = append(byNS[c.Namespace], c)
		}
		for ns, recs := range byNS {
			w := s.writers[ns]
			if w == nil {
				continue // no longer write-behind here: kept for an operator
			}
			ws := make([]strategy.Write, len(recs))
			for i, r := range recs {
				ws[i] = r.Write()
			}
			wctx, cancel := context.WithTimeout(ctx, stillPendingTimeout)
			err := w.Write(wctx, ws)
			cancel()
			if err != nil {
				s.e.log.Warn("salvaging replica copies of a node gone while this one was down failed; retrying later", "origin", o.Node, "err", err)
				return
			}
			if _, err := s.j.ApplyReplica(o, dropOps(recs)); err != nil {
				return
			}
			written += len(recs)
		}
	}
	if written > 0 {
		s.e.log.Warn("wrote to the database the replica copies of a node that left while this one was down", "origin", o.Node, "records", written)
	}
}
