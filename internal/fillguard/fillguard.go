// Package fillguard keeps a cache fill from installing a value that an
// invalidation made stale while the read behind the fill was in flight.
//
// A reader takes a Token before it asks for a key's value elsewhere (a call
// to the key's owner), and stores the answer with Fill. Whoever learns that
// the key changed calls Invalidate. Fill stores only if no invalidation of
// the key came after the token was taken; an invalidation that comes after
// the fill drops the stored value. Either way no value older than the last
// invalidation survives it, whatever order the answer and the invalidation
// arrive in.
//
// Keys are hashed onto a fixed number of stripes, so memory is bounded and
// an invalidation of one key may also fail fills of other keys of its
// stripe: spurious failures cost a fill, never correctness.
package fillguard

import (
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Stripes is the number of independent generations a Guard keeps.
const Stripes = 4096

// Guard is safe for concurrent use; its zero value is ready. It is large
// (Stripes mutexes and counters, 64 KiB): embed it or allocate it once.
type Guard struct {
	mu  [Stripes]sync.Mutex
	gen [Stripes]atomic.Uint64
}

// Token is what a reader records before its read, to fill afterwards.
type Token struct {
	stripe uint32
	gen    uint64
}

func stripe(key string) uint32 { return uint32(xxhash.Sum64String(key) % Stripes) }

// Token returns the state of key's stripe; take it before the read.
func (g *Guard) Token(key string) Token {
	i := stripe(key)
	return Token{stripe: i, gen: g.gen[i].Load()}
}

// Fill runs store, under the lock of t's stripe, unless the stripe was
// invalidated since t was taken, and reports whether it ran. store must
// not block: it holds up invalidations of its stripe.
func (g *Guard) Fill(t Token, store func()) bool {
	g.mu[t.stripe].Lock()
	defer g.mu[t.stripe].Unlock()
	if g.gen[t.stripe].Load() != t.gen {
		return false
	}
	store()
	return true
}

// Invalidate makes fills of key (and of its stripe) with earlier tokens
// fail, and runs drop (which removes the cached value) under the stripe's
// lock, so no fill can slip in between. drop may be nil.
func (g *Guard) Invalidate(key string, drop func()) {
	i := stripe(key)
	g.mu[i].Lock()
	defer g.mu[i].Unlock()
	g.gen[i].Add(1)
	if drop != nil {
		drop()
	}
}
