package replica

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// link is the origin's side of one replica: a queue and the goroutine that
// sends it, one frame at a time, over one stream.
type link struct {
	ls   *Links
	to   ring.Member
	wake chan struct{} // 1-slot: the queue grew or the link closes
	done chan struct{} // closed by close

	mu        sync.Mutex
	queue     []item
	closed    bool
	cancelCur context.CancelFunc // the open stream's, if any
	lastErr   error              // why the last attempt failed; nil once it works
	retryAt   time.Time          // until then a record fails at once with lastErr
	seq       uint64
}

func newLink(ls *Links, to ring.Member) *link {
	return &link{ls: ls, to: to, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (l *link) push(items []item) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		failAll(items, errClosed(l.to))
		return
	}
	l.queue = append(l.queue, items...)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.done)
	if l.cancelCur != nil {
		l.cancelCur()
	}
}

func (l *link) downErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastErr != nil && time.Now().Before(l.retryAt) {
		return l.lastErr
	}
	return nil
}

func (l *link) failed(err error) {
	l.mu.Lock()
	l.lastErr, l.retryAt = err, time.Now().Add(retryDown)
	l.mu.Unlock()
	l.ls.stats.failedFrames.Add(1)
}

// take removes the next frame's items from the queue: up to the frame
// bounds, at least one. Markers (Idle) come out alone.
func (l *link) take() []item {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		return nil
	}
	if l.queue[0].rec == nil {
		it := l.queue[0]
		l.queue = l.queue[1:]
		return []item{it}
	}
	n, size := 0, 0
	for n < len(l.queue) && n < l.ls.cfg.MaxFrameRecords && l.queue[n].rec != nil {
		if n > 0 && size+l.queue[n].size > l.ls.cfg.MaxFrameBytes {
			break
		}
		size += l.queue[n].size
		n++
	}
	out := l.queue[:n:n]
	l.queue = l.queue[n:]
	if len(l.queue) == 0 {
		l.queue = nil // let the backing array go
	}
	return out
}

// stream is one open Peer.Replicate stream.
type stream struct {
	cs     pb.Peer_ReplicateClient
	cancel context.CancelFunc
}

func (l *link) run() {
	var st *stream
	defer func() {
		if st != nil {
			st.cancel()
		}
		l.mu.Lock()
		rest := l.queue
		l.queue = nil
		l.mu.Unlock()
		failAll(rest, errClosed(l.to))
	}()
	for {
		select {
		case <-l.done:
			return
		case <-l.wake:
		}
		for items := l.take(); items != nil; items = l.take() {
			if items[0].rec == nil { // a marker: everything before it is answered
				items[0].res.finish(nil)
				continue
			}
			select {
			case <-l.done:
				failAll(items, errClosed(l.to))
				return
			default:
			}
			if st == nil {
				if err := l.downErr(); err != nil {
					failAll(items, err)
					continue
				}
				var err error
				if st, err = l.connect(); err != nil {
					l.failed(err)
					failAll(items, err)
					continue
				}
			}
			if err := l.exchange(st, items); err != nil {
				st.cancel()
				st = nil
			}
		}
	}
}

// connect opens a stream and exchanges hellos, within the timeout.
func (l *link) connect() (*stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		cancel()
		return nil, errClosed(l.to)
	}
	l.cancelCur = cancel
	l.mu.Unlock()
	cfg := l.ls.cfg
	t := time.AfterFunc(cfg.Timeout, cancel)
	cs, err := cfg.Dial.Replicate(ctx, l.to)
	var resp *pb.ReplicateResponse
	if err == nil {
		err = cs.Send(&pb.ReplicateRequest{Hello: &pb.ReplicateHello{Origin: cfg.Origin.Node, JournalId: cfg.Origin.ID, Hlc: cfg.Clock.Now()}})
	}
	if err == nil {
		resp, err = cs.Recv()
	}
	fired := !t.Stop()
	if err != nil {
		cancel()
		return nil, l.unavailable("open a replication stream", err, fired)
	}
	if err := cfg.Clock.Observe(resp.GetHlc()); err != nil {
		l.ls.log.Warn("replica's clock is too far ahead; not adopted", "replica", l.to.Name, "err", err)
	}
	if cfg.ReplicaID != nil {
		cfg.ReplicaID(l.to.Name, resp.GetJournalId())
	}
	l.seq = 0 // frames count from 1 on every stream
	return &stream{cs: cs, cancel: cancel}, nil
}

// exchange sends items as one frame and hands each its result. An error
// means the stream is broken; the items have their results either way.
func (l *link) exchange(st *stream, items []item) error {
	cfg := l.ls.cfg
	l.seq++
	req := &pb.ReplicateRequest{Seq: l.seq, Hlc: cfg.Clock.Now()}
	stored := make([]*Result, 0, len(items))
	for _, it := range items {
		if it.drop {
			req.Flushed = append(req.Flushed, it.rec)
		} else {
			req.Records = append(req.Records, it.rec)
			stored = append(stored, it.res)
		}
	}
	start := time.Now()
	t := time.AfterFunc(cfg.Timeout, st.cancel)
	err := st.cs.Send(req)
	var resp *pb.ReplicateResponse
	if err == nil {
		resp, err = st.cs.Recv()
	}
	fired := !t.Stop()
	if err == nil && resp.GetSeq() != l.seq {
		err = fmt.Errorf("answer to frame %d, want %d", resp.GetSeq(), l.seq)
	}
	if err != nil {
		err = l.unavailable("replicate", err, fired)
		l.failed(err) // before the results: a caller that sees one sees the link down
		failAll(items, err)
		return err
	}
	rtt := time.Since(start)
	l.ls.lat.add(rtt)
	if cfg.Observe != nil {
		cfg.Observe(rtt)
	}
	l.ls.stats.frames.Add(1)
	if err := cfg.Clock.Observe(resp.GetHlc()); err != nil {
		l.ls.log.Warn("replica's clock is too far ahead; not adopted", "replica", l.to.Name, "err", err)
	}
	refused := map[uint32]bool{}
	for _, i := range resp.GetRefused() {
		refused[i] = true
	}
	var ok uint64
	for i, r := range stored {
		if refused[uint32(i)] {
			r.finish(fmt.Errorf("%w: replica %s did not store the copy: %s", journal.ErrFull, l.to.Name, resp.GetRefusedReason()))
			continue
		}
		ok++
		r.finish(nil)
	}
	l.ls.stats.stored.Add(ok)
	return nil
}

// unavailable wraps a transport failure; timedOut says the timer cut it.
func (l *link) unavailable(what string, err error, timedOut bool) error {
	if timedOut {
		return fmt.Errorf("%w: %s at %s: %s: no answer within %s", ErrUnavailable, l.to.Name, l.to.Addr, what, l.ls.cfg.Timeout)
	}
	return fmt.Errorf("%w: %s at %s: %s: %v", ErrUnavailable, l.to.Name, l.to.Addr, what, err)
}

func errClosed(to ring.Member) error {
	return fmt.Errorf("%w: %s at %s: replication link closed (the replica left the ring, or this node is stopping)", ErrUnavailable, to.Name, to.Addr)
}
