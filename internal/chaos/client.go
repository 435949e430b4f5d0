package chaos

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/pkg/client"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// cacheAPI is what a workload client calls: a node directly, or the
// cluster through the ring-aware Go client.
type cacheAPI interface {
	Get(ctx context.Context, ns, key string) ([]byte, bool, error)
	Set(ctx context.Context, ns, key string, value []byte) error
	Delete(ctx context.Context, ns, key string) error
	Close() error
}

// nodeCache calls one node over plain gRPC.
type nodeCache struct {
	cc *grpc.ClientConn
	c  pb.CacheClient
}

// dialNode connects to n from inside n's namespace: an application next
// to its node, on the same side of any partition.
func dialNode(n *Node) (*nodeCache, error) {
	cc, err := grpc.NewClient("passthrough:///"+n.GRPCAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(n.Host.Dial),
		grpc.WithConnectParams(fastReconnect))
	if err != nil {
		return nil, err
	}
	return &nodeCache{cc: cc, c: pb.NewCacheClient(cc)}, nil
}

func (n *nodeCache) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	r, err := n.c.Get(ctx, &pb.GetRequest{Namespace: ns, Key: key})
	return r.GetValue(), r.GetFound(), err
}

func (n *nodeCache) Set(ctx context.Context, ns, key string, value []byte) error {
	_, err := n.c.Set(ctx, &pb.SetRequest{Namespace: ns, Key: key, Value: value})
	return err
}

func (n *nodeCache) Delete(ctx context.Context, ns, key string) error {
	_, err := n.c.Delete(ctx, &pb.DeleteRequest{Namespace: ns, Key: key})
	return err
}

func (n *nodeCache) Close() error { return n.cc.Close() }

// ringCache is pkg/client from the root namespace: it routes each call to
// the key's owner and retries elsewhere as the client does for users.
type ringCache struct{ *client.Client }

func (r ringCache) Set(ctx context.Context, ns, key string, value []byte) error {
	return r.Client.Set(ctx, ns, key, value, 0)
}

// worker is one client: sequential operations, values numbered by its own
// sequence.
type worker struct {
	id  int
	via string // node name for a nodeCache, "" for the ring-aware client
	api cacheAPI
	seq int
	rng *rand.Rand
}

// keySet is what a round's clients touch: busy keys, read and written in
// every namespace, and quiet keys per namespace, only read.
type keySet struct {
	busy  []string
	quiet map[string][]string
}

// workload drives the workers against the current round's keys and records
// every operation.
type workload struct {
	hist     *History
	db       *pgxpool.Pool // the application's own database writes (namespace rt)
	workers  []*worker     // the random load
	apis     []cacheAPI    // every connection, the script's included
	allKeys  [][2]string   // {namespace, key} of every round so far
	keys     atomic.Pointer[keySet]
	interval time.Duration // between one worker's operations
	timeout  time.Duration // of one operation
	writes   float64       // fraction of operations that write
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// start runs every worker until stop.
func (w *workload) start() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	for _, wk := range w.workers {
		w.wg.Go(func() { w.loop(ctx, wk) })
	}
}

// stop ends the workers after their operation in flight.
func (w *workload) stop() {
	if w.cancel != nil {
		w.cancel()
		w.wg.Wait()
		w.cancel = nil
	}
}

func (w *workload) loop(ctx context.Context, wk *worker) {
	tick := time.NewTicker(w.interval) // pacing, not waiting for a condition
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ks := w.keys.Load()
		ns := Namespaces[wk.rng.IntN(len(Namespaces))]
		kind := Read
		if wk.rng.Float64() < w.writes {
			kind = Write
		}
		var key string
		if quiet := ks.quiet[ns]; len(quiet) > 0 && wk.rng.IntN(2) == 0 {
			key, kind = quiet[wk.rng.IntN(len(quiet))], Read
		} else {
			key = ks.busy[wk.rng.IntN(len(ks.busy))]
		}
		w.hist.Add(w.do(wk, ns, key, kind))
	}
}

// do performs and times one operation. A write to the write-aside
// namespace is the application's: an upsert of the database row, then a
// Delete of the cached entry; it is acknowledged when both succeeded.
func (w *workload) do(wk *worker, ns, key string, kind Kind) Op {
	op := Op{Client: wk.id, Via: wk.via, NS: ns, Key: key, Kind: kind}
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	var err error
	op.Invoke = w.hist.Now()
	switch {
	case kind == Read:
		var v []byte
		v, op.Found, err = wk.api.Get(ctx, ns, key)
		op.Value = string(v)
	case ns == NSReadThrough:
		wk.seq++
		op.Value = value(wk.id, wk.seq)
		_, err = w.db.Exec(ctx, `INSERT INTO ringcache_kv (namespace, key, value, version) VALUES ($1, $2, $3, 0)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = now()`, ns, key, []byte(op.Value))
		if err == nil {
			err = wk.api.Delete(ctx, ns, key)
		}
	default:
		wk.seq++
		op.Value = value(wk.id, wk.seq)
		err = wk.api.Set(ctx, ns, key, []byte(op.Value))
	}
	op.Complete = w.hist.Now()
	op.Result, op.Err = classify(err)
	return op
}

// closeWorkers closes every connection.
func (w *workload) closeWorkers() {
	for _, a := range w.apis {
		a.Close()
	}
}
