package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// versionedDB is a database shared by engines: a write replaces a row only
// with a higher version, as the generic table does.
type versionedDB struct {
	mu   sync.Mutex
	rows map[string]strategy.Write
}

func (db *versionedDB) Load(_ context.Context, key string) ([]byte, bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w, ok := db.rows[key]
	return w.Value, ok && !w.Delete, nil
}

func (db *versionedDB) Write(_ context.Context, ws []strategy.Write) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, w := range ws {
		if cur, ok := db.rows[w.Key]; !ok || w.Version > cur.Version {
			w.Value = append([]byte(nil), w.Value...)
			db.rows[w.Key] = w
		}
	}
	return nil
}

// fenceEnv is two engines, a and b, each with one write-through,
// read-through namespace "users" on one database; r1 is the ring of a
// alone, r2 the ring of both, and k a key whose partition moves from a to
// b between them.
type fenceEnv struct {
	a, b   *Engine
	r1, r2 *ring.Ring
	k      string
}

func newFenceEnv(t *testing.T) fenceEnv {
	t.Helper()
	peers := &warmPeers{engines: map[string]*Engine{}}
	db := &versionedDB{rows: map[string]strategy.Write{}}
	spec := NamespaceSpec{Policy: strategy.Policy{Name: "users", Read: strategy.ReadThrough, Write: strategy.WriteThrough,
		TTL: time.Hour, MaxKeyBytes: 64}, Loader: db, Writer: db}
	env := fenceEnv{a: peers.add(t, "a", spec, WarmConfig{}), b: peers.add(t, "b", spec, WarmConfig{})}
	env.r1 = mustRing(t, members("a"))
	env.r2 = rebalance(t, env.r1, members("a", "b"))
	env.k = movedKey(t, env.r1, env.r2)
	return env
}

// movedKey returns a key whose partition a owns in from and b in to.
func movedKey(t *testing.T, from, to *ring.Ring) string {
	t.Helper()
	for i := range 10000 {
		p := to.PartitionOf(ring.Key("users", key(i)))
		if from.PartitionOwner(p).Name == "a" && to.PartitionOwner(p).Name == "b" {
			return key(i)
		}
	}
	t.Fatal("no key moves from a to b")
	return ""
}

// pulled waits until b has no pull of a gained partition open.
func pulled(t *testing.T, b *Engine) {
	t.Helper()
	waitFor(t, "b's pulls to end", func() bool { return !b.Settling() })
}

func set(t *testing.T, e *Engine, k, v string) {
	t.Helper()
	ns, _ := e.Namespace("users")
	if err := ns.Set(context.Background(), k, []byte(v), 0); err != nil {
		t.Fatal(err)
	}
}

// The rejoin race, the returning node first: b (back after a restart)
// routes by the table that gives it a partition while a, its interim
// owner, still routes by the one before. Both acknowledge a write of the
// same key, b's first; a's is the newer, and the database holds it. Once
// a lets the partition go, b must not keep serving its own older value.
func TestFence_TheInterimOwnersLaterWriteWins(t *testing.T) {
	env := newFenceEnv(t)
	a, b, r1, r2, k := env.a, env.b, env.r1, env.r2, env.k
	a.SetRing(r1)
	set(t, a, k, "before")

	b.SetRingAfter(r1, r2) // b has the new table; a answers not_yet
	set(t, b, k, "from-b")
	_ = a.ObserveClock(b.Versions()) // a's write is the later one
	set(t, a, k, "from-a")
	a.SetRing(r2) // a lets the partition go
	pulled(t, b)

	nsB, _ := b.Namespace("users")
	mustGetValue(t, nsB, k, "from-a")
}

// The rejoin race, the other way round: a member already on the new table
// forwards a write to b, which still routes by the old one and serves it
// (a forwarded op is always served); b's entry goes when it installs the
// new table. a, the previous owner, had cached the key before; b must not
// adopt that older entry.
func TestFence_AForwardedWriteBeforeTheTableIsNotUndoneByTheHandOver(t *testing.T) {
	env := newFenceEnv(t)
	a, b, r1, r2, k := env.a, env.b, env.r1, env.r2, env.k
	a.SetRing(r1)
	b.SetRing(r1)
	set(t, a, k, "old") // a caches it

	a.SetRing(r2) // a first: it holds "old" for b and forwards k to b
	var err error
	b.Execute(context.Background(), Caller{Forwarded: true}, []Op{{Kind: Set, Namespace: "users", Key: k, Value: []byte("new")}},
		func(_ int, r Result) { err = r.Err }, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.SetRingAfter(r1, r2)
	pulled(t, b)

	nsB, _ := b.Namespace("users")
	mustGetValue(t, nsB, k, "new")
}

// Forward serves a forwarded batch on the named engine, as Peer.Forward
// does.
func (w *warmPeers) Forward(ctx context.Context, to ring.Member, req *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	ops := make([]Op, len(req.Ops))
	for i, o := range req.Ops {
		ops[i], _ = OpFromProto(o)
	}
	resp := &pb.ForwardResponse{Results: make([]*pb.PipelineResult, len(ops))}
	w.get(to.Name).Execute(ctx, Caller{Forwarded: true}, ops, func(i int, r Result) { resp.Results[i] = r.Proto(uint64(i)) }, nil)
	return resp, nil
}

// The race on the way out: a leaving node keeps its partitions by its own
// table until it is gone, so it would go on accepting writes of a
// partition whose entries its new owner already pulled, and the new owner
// would serve the entry it pulled. Once it handed a partition over, the
// leaving node sends its ops to the new owner.
func TestFence_ALeavingNodeSendsAHandedOverPartitionsWritesOn(t *testing.T) {
	env := newFenceEnv(t)
	a, b, r2 := env.a, env.b, env.r2
	var k string
	for i := 0; k == ""; i++ {
		if r2.PartitionOwner(r2.PartitionOf(ring.Key("users", key(i)))).Name == "a" {
			k = key(i)
		}
	}
	a.SetRing(r2)
	b.SetRing(r2)
	a.SetReady()
	set(t, a, k, "old")

	a.StartLeaving()
	b.SetRingAfter(r2, rebalance(t, r2, members("b"))) // a routes by r2 until it is gone
	pulled(t, b)
	var err error
	a.Execute(context.Background(), Caller{}, []Op{{Kind: Set, Namespace: "users", Key: k, Value: []byte("new")}},
		func(_ int, r Result) { err = r.Err }, nil)
	if err != nil {
		t.Fatal(err)
	}
	nsB, _ := b.Namespace("users")
	mustGetValue(t, nsB, k, "new")
}

// After a partition heals, the node that was cut off gains partitions back
// from the majority's owner. While that owner still routes by its old
// table, a miss on the gaining node asks it (the warm hand-over's lookup)
// and caches its entry; but the cut-off node's own write, made while it
// was alone and flushed, is the newer one. Once the old owner lets go
// (after its merge), the gaining node must drop the entry it looked up.
func TestFence_AnEntryLookedUpWhileBothOwnedIsDroppedOnceThePreviousOwnerLetsGo(t *testing.T) {
	env := newFenceEnv(t)
	a, b, r1, r2, k := env.a, env.b, env.r1, env.r2, env.k
	a.SetRing(r1)
	b.SetRing(mustRing(t, members("b"))) // cut off: b owns everything
	set(t, a, k, "majority")
	_ = b.ObserveClock(a.Versions())
	set(t, b, k, "minority") // the later write, in the database

	b.Merge(members("a"))
	b.SetRingAfter(r1, r2) // the heal's table: b gains k's partition from a
	nsB, _ := b.Namespace("users")
	mustGetValue(t, nsB, k, "majority") // in the window: a still owns it, and answers
	a.Merge(members("b"))
	a.SetRing(r2)
	pulled(t, b)
	mustGetValue(t, nsB, k, "minority")
}
