package engine

import (
	"sync"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
)

// presence is what this node has seen of the others since it started: who
// has been in its ring, when each left it, and when each last opened a
// replication stream to it. Whether the copies of an origin are orphaned is
// decided on it (isDeparted):
//
//   - in the ring: not orphaned;
//   - never in this node's ring since it started: unknown (a node that went
//     away while this one was down, or one that has not joined yet): its
//     copies are not read and not adopted, but salvaged (sweep.go);
//   - left the ring, and opened a stream since: rejoining, not orphaned (its
//     frames may arrive before gossip brings it back into the ring);
//   - left the ring and silent since: departed.
type presence struct {
	mu    sync.Mutex
	seen  map[string]bool
	left  map[string]time.Time
	hello map[string]time.Time
}

func newPresence() *presence {
	return &presence{seen: map[string]bool{}, left: map[string]time.Time{}, hello: map[string]time.Time{}}
}

// ringChanged records the members of r and who left since old.
func (p *presence) ringChanged(old, r *ring.Ring, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range r.Members() {
		p.seen[m.Name] = true
	}
	if old == nil {
		return
	}
	for _, m := range old.Members() {
		if !r.Has(m.Name) {
			p.left[m.Name] = now
		}
	}
}

func (p *presence) sawHello(node string, now time.Time) {
	p.mu.Lock()
	p.hello[node] = now
	p.mu.Unlock()
}

// departed reports whether node, which is not in the ring, left it and
// has been silent since.
func (p *presence) departed(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.seen[node] {
		return false
	}
	h, ok := p.hello[node]
	return !ok || !h.After(p.left[node])
}

// unknown reports whether node has never been in this node's ring.
func (p *presence) unknown(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.seen[node]
}
