package engine

import (
	"context"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/ring"
)

// The replication manager: one goroutine that, when poked (a ring change, a
// write acknowledged with fewer copies than wanted, a new journal seen) and
// every second, takes over orphaned copies (takeover.go), re-replicates this
// node's pending records whose replicas changed, and now and then sweeps
// the copies it holds (sweep.go).

// retryTick is how often the manager retries what failed.
const retryTick = time.Second

func (s *replication) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// mark asks for the pending records of the partitions flagged in changed
// (all of them with all) to be re-replicated.
func (s *replication) mark(changed []bool, all bool) {
	s.mark0(changed, all)
	s.poke()
}

// mark0 is mark without waking the manager (SetRing wakes it once r is
// visible, so it never works on the ring being replaced).
func (s *replication) mark0(changed []bool, all bool) {
	s.mu.Lock()
	if all {
		s.all = true
	}
	if changed != nil {
		if s.changed == nil {
			s.changed = make([]bool, len(changed))
		}
		if len(s.changed) != len(changed) {
			s.all = true
		} else {
			for p, c := range changed {
				s.changed[p] = s.changed[p] || c
			}
		}
	}
	s.gen++
	s.inSync.Store(false)
	s.mu.Unlock()
}

// ringChanged is SetRing's part: before r is visible, build its replica
// table and note what moved; the manager re-replicates and takes over.
func (s *replication) ringChanged(old, r *ring.Ring) {
	var prev *replicaTable
	if old != nil {
		prev = s.e.replicaTable(old)
	}
	s.presence.ringChanged(old, r, time.Now())
	cur := s.e.replicaTable(r)
	changed := changedPartitions(prev, cur)
	any := false
	for _, c := range changed {
		any = any || c
	}
	if any {
		s.mark0(changed, false)
	}
	s.refreshDeparted(r)
	s.links.Retain(r.Members())
}

func (s *replication) manage() {
	defer close(s.stopped)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		cancel()
	}()
	tick := time.NewTicker(retryTick)
	defer tick.Stop()
	lastSweep := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-tick.C:
		}
		if s.readySince.IsZero() && s.e.ready.Load() {
			s.readySince = time.Now()
		}
		if !s.e.Draining() { // a node that leaves takes nothing over
			if err := s.takeOverDeparted(ctx); err != nil && ctx.Err() == nil {
				s.e.log.Warn("taking over a departed node's write-behind writes failed; retrying", "err", err)
			}
		}
		s.resyncMarked(ctx)
		if time.Since(lastSweep) >= s.e.cfg.Replication.SweepInterval {
			s.sweep(ctx)
			lastSweep = time.Now()
		}
	}
}

// resyncMarked re-replicates what mark asked for; what fails is marked
// again for the next round.
func (s *replication) resyncMarked(ctx context.Context) {
	s.mu.Lock()
	changed, all, gen := s.changed, s.all, s.gen
	s.changed, s.all = nil, false
	s.mu.Unlock()
	if changed == nil && !all {
		return
	}
	if failed := s.resync(ctx, changed, all); failed > 0 {
		if ctx.Err() == nil {
			s.e.log.Debug("re-replication incomplete; retrying", "failed_copies", failed)
		}
		s.mark(changed, all)
		return
	}
	s.mu.Lock()
	if s.gen == gen {
		s.inSync.Store(true)
	}
	s.mu.Unlock()
}

// resync copies every pending record of the flagged partitions (all, with
// all) to its current replicas, a page at a time, and returns how many
// copies failed.
func (s *replication) resync(ctx context.Context, changed []bool, all bool) int {
	r := s.e.ring.Load()
	if r == nil {
		return 0
	}
	failed := 0
	var after uint64
	for ctx.Err() == nil {
		page, next, err := s.j.Scan(after, replicationPage)
		if err != nil {
			return failed + 1
		}
		if len(page) == 0 {
			break
		}
		after = next
		var mine []journal.Record
		for _, rec := range page {
			p := r.PartitionOf(ring.Key(rec.Namespace, rec.Key))
			if all || (p < len(changed) && changed[p]) {
				mine = append(mine, rec)
			}
		}
		failed += s.replicateRecords(ctx, r, mine)
	}
	if ctx.Err() != nil {
		failed++
	}
	return failed
}
