package strategy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultLeaseTTL bounds how long a lease holder may take to load and Set.
const DefaultLeaseTTL = 10 * time.Second

// maxLeases bounds the leases outstanding per namespace; past it, otter
// evicts the least valuable, and their holders' Sets are rejected.
const maxLeases = 1 << 20

// leases maps a store key to the token of its outstanding lease.
type leases = otter.Cache[string, uint64]

func newLeases(ttl time.Duration) *leases {
	return otter.Must(&otter.Options[string, uint64]{
		MaximumSize:      maxLeases,
		ExpiryCalculator: otter.ExpiryCreating[string, uint64](ttl),
		Logger:           &otter.NoopLogger{},
	})
}

// LeaseResult is the answer to a Lease.
type LeaseResult struct {
	Value []byte
	Found bool
	// Token is non-zero when the caller holds the lease: it should load
	// the value and Set it with the token.
	Token uint64
	// Wait is true when another caller holds the lease.
	Wait bool
}

// Lease is Get for cache-aside loading. On a miss, the first caller gets a
// lease token and the others Wait; a Set or Delete of the key invalidates
// the lease, so SetLeased with an invalidated token changes nothing. In a
// read-through or write-behind namespace a miss is loaded as by Get and no
// lease is handed out.
func (n *Namespace) Lease(ctx context.Context, key string) (LeaseResult, error) {
	if n.p.Read == ReadThrough || n.journal != nil {
		v, found, err := n.Get(ctx, key)
		return LeaseResult{Value: v, Found: found}, err
	}
	if err := n.ValidateKey(key); err != nil {
		return LeaseResult{}, err
	}
	n.c.gets.Add(1)
	skey := n.prefix + key
	if e, ok := n.lookup(skey); ok {
		n.c.hits.Add(1)
		if !e.Found {
			n.c.negHits.Add(1)
		}
		return LeaseResult{Value: e.Value, Found: e.Found}, nil
	}
	n.c.misses.Add(1)
	i := n.stripe(skey)
	n.genMu[i].Lock()
	defer n.genMu[i].Unlock()
	// Look again under the lock: the previous holder may have stored the
	// value (and spent its lease) since the miss above.
	if e, ok := n.lookup(skey); ok {
		return LeaseResult{Value: e.Value, Found: e.Found}, nil
	}
	if _, held := n.leases.GetIfPresent(skey); held {
		n.c.leaseWaits.Add(1)
		return LeaseResult{Wait: true}, nil
	}
	token := rand.Uint64() | 1 // never 0
	n.leases.Set(skey, token)
	n.c.leasesGranted.Add(1)
	return LeaseResult{Token: token}, nil
}

// SetLeased is Set for the holder of a lease: it applies only while the
// lease is valid, and fails with ErrLeaseInvalid otherwise, changing
// nothing. The lease is spent either way.
func (n *Namespace) SetLeased(ctx context.Context, key string, value []byte, ttl time.Duration, token uint64) error {
	if token == 0 {
		return n.Set(ctx, key, value, ttl)
	}
	if err := n.ValidateKey(key); err != nil {
		return err
	}
	if err := n.ValidateValue(value); err != nil {
		return err
	}
	skey := n.prefix + key
	i := n.stripe(skey)
	n.genMu[i].Lock()
	cur, ok := n.leases.GetIfPresent(skey)
	if !ok || cur != token {
		n.genMu[i].Unlock()
		n.c.leaseRejected.Add(1)
		return fmt.Errorf("%w: the lease on the key in namespace %q was invalidated by a newer write or delete, or it expired", ErrLeaseInvalid, n.p.Name)
	}
	n.leases.Invalidate(skey)
	if n.p.Write != WriteAside {
		// The database write cannot run under the stripe lock, so the
		// version is taken here: a write that lands before the one below
		// gets a higher version and wins in the database and the cache.
		version := n.versions.Now()
		n.genMu[i].Unlock()
		n.c.sets.Add(1)
		return n.write(ctx, key, storeEntry(value, n.ttl(ttl), 0), Write{Key: key, Value: value, Version: version})
	}
	// Cache-aside: check and store as one step, so a Delete cannot slip
	// between them and be overwritten by the stale value.
	defer n.genMu[i].Unlock()
	n.c.sets.Add(1)
	n.gen[i].Add(1)
	n.flight.Forget(n.flightKey(skey))
	e := storeEntry(value, n.ttl(ttl), n.versions.Now())
	e.Epoch = n.stamp()
	n.putIfNewer(skey, e)
	n.changed(key)
	return nil
}
