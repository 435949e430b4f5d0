package strategy

import "context"

// WarmSource says where Warm found a key's value.
type WarmSource int

// Warm sources.
const (
	// WarmHeld: the key was in memory already; nothing was loaded.
	WarmHeld WarmSource = iota
	// WarmPending: a write-behind write still waiting for the database,
	// this node's or one a previous owner of the key answered
	// (Deps.Journal decides whom it asks).
	WarmPending
	// WarmDatabase: a database row, or its absence (cached for
	// NegativeTTL).
	WarmDatabase
	// WarmNotLoaded: the namespace does not read through, so nothing is
	// worth loading.
	WarmNotLoaded
)

// Warm loads key into memory ahead of any caller, as a miss would: through
// the one load per key that concurrent callers of the key share, so a
// client's miss during Warm waits for the same load and the database sees
// one query. It is not counted as a Get. An error is the load's.
func (n *Namespace) Warm(ctx context.Context, key string) (WarmSource, error) {
	if n.p.Read != ReadThrough {
		return WarmNotLoaded, nil
	}
	if err := n.ValidateKey(key); err != nil {
		return WarmNotLoaded, err
	}
	skey := n.prefix + key
	if _, ok := n.lookup(skey); ok {
		return WarmHeld, nil
	}
	n.c.warms.Add(1)
	r, err := n.loadResult(ctx, key, skey)
	switch {
	case err != nil:
		return WarmDatabase, err
	case r.cached:
		return WarmHeld, nil
	case r.version != 0:
		return WarmPending, nil
	}
	return WarmDatabase, nil
}
