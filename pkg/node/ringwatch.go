package node

import (
	"sync"

	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// ringNotifier wakes WatchRing streams when the ring changes or the node
// starts to drain: each waiter gets a channel that the next notify closes.
type ringNotifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (r *ringNotifier) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

func (r *ringNotifier) notify() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
}

// WatchRing streams the ring: the current snapshot, then each new one. The
// stream ends when the node starts to drain, so clients move to another node.
func (s *cacheServer) WatchRing(_ *pb.WatchRingRequest, stream pb.Cache_WatchRingServer) error {
	n := s.n
	var sent uint64
	for {
		changed := n.ringNotes.wait() // before reading the ring: no change is missed
		if n.closing.Load() {
			return toStatus(ErrNotReady)
		}
		if r := n.ring.Load(); r != nil && r.Version() != sent {
			if err := stream.Send(ringMessage(r)); err != nil {
				return err
			}
			sent = r.Version()
		}
		select {
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-changed:
		}
	}
}

func ringMessage(r *ring.Ring) *pb.WatchRingResponse {
	members := r.Members()
	index := make(map[string]uint32, len(members))
	msg := &pb.WatchRingResponse{Version: r.Version(), PartitionCount: uint32(r.PartitionCount()), Owners: make([]uint32, r.PartitionCount())}
	for i, m := range members {
		index[m.Name] = uint32(i)
		msg.Nodes = append(msg.Nodes, &pb.RingNode{Name: m.Name, GrpcAddr: m.Addr})
	}
	for p := range msg.Owners {
		msg.Owners[p] = index[r.PartitionOwner(p).Name]
	}
	return msg
}
