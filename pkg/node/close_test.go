package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/testclock"
	"github.com/ringcache/ringcache/pkg/client"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// stuckDB answers at once until stuck is set; from then on every load
// reports itself on started and returns only when its context ends, as a
// database that hangs would.
type stuckDB struct {
	stuck     atomic.Bool
	started   chan string
	cancelled atomic.Int64 // loads whose context was cancelled (not timed out)
}

func (db *stuckDB) Load(ctx context.Context, key string) ([]byte, bool, error) {
	if !db.stuck.Load() {
		return []byte("v-" + key), true, nil
	}
	db.started <- key
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.Canceled) {
		db.cancelled.Add(1)
	}
	return nil, false, ctx.Err()
}

// closeMidLoad starts a node on db, gets it into the middle of slow cold
// loads (through unary calls and the Go client's Pipeline) and
// refresh-ahead reloads, and then calls stop. It checks that every load
// saw its context cancelled by then, that every caller got an answer, and
// that no goroutine outlives stop.
func closeMidLoad(t *testing.T, stop func(*node.Node)) {
	const coldKeys, callersPerKey, hotKeys = 12, 4, 8
	before := goleak.IgnoreCurrent()
	clk := testclock.New()
	db := &stuckDB{started: make(chan string, coldKeys+hotKeys)}
	p := strategy.Policy{Name: "users", Read: strategy.ReadThrough, TTL: time.Hour, RefreshAhead: 0.5,
		LoadTimeout: time.Hour} // only the node's lifetime ends a load
	n, err := node.New(node.Config{
		Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", Clock: clk,
		Namespaces: []node.NamespaceSpec{{Policy: p, Loader: db}},
		Logger:     clustertest.Logger(t, "n1", nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Kill()
		}
	}()
	clustertest.Eventually(t, 5*time.Second, func() error { return n.NotReady() })

	cc, err := grpc.NewClient("passthrough:///"+n.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cache := pb.NewCacheClient(cc)
	cl, err := client.New(client.Options{Seeds: []string{n.GRPCAddr()}, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	for i := range hotKeys {
		if _, err := cache.Get(ctxT(t), &pb.GetRequest{Namespace: "users", Key: fmt.Sprint("h", i)}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(p.TTL/2 + time.Minute) // every hot entry is due for a refresh
	db.stuck.Store(true)

	var wg sync.WaitGroup
	var answered atomic.Int64
	for i := range coldKeys {
		key := fmt.Sprint("c", i)
		for j := range callersPerKey {
			wg.Go(func() {
				var err error
				if j%2 == 0 {
					_, err = cache.Get(context.Background(), &pb.GetRequest{Namespace: "users", Key: key})
				} else {
					_, _, err = cl.Get(context.Background(), "users", key)
				}
				if err == nil {
					t.Errorf("a cold Get of %s succeeded while the database hangs", key)
				}
				answered.Add(1)
			})
		}
	}
	for i := range hotKeys {
		// A hit: answered from memory at once, and starts a refresh.
		r, err := cache.Get(ctxT(t), &pb.GetRequest{Namespace: "users", Key: fmt.Sprint("h", i)})
		if err != nil || string(r.GetValue()) != fmt.Sprint("v-h", i) {
			t.Fatalf("hit on h%d due for refresh = %v, %v; want its cached value", i, r, err)
		}
	}
	for range coldKeys + hotKeys {
		select {
		case <-db.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the loads and refreshes did not all start")
		}
	}

	stopped := make(chan struct{})
	go func() { stop(n); close(stopped) }()
	select {
	case <-stopped:
		closed = true
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not stop while loads and refreshes hang")
	}

	if got := db.cancelled.Load(); got != coldKeys+hotKeys {
		t.Errorf("%d of %d loads and refreshes saw their context cancelled when the node stopped", got, coldKeys+hotKeys)
	}
	wg.Wait() // every caller got an answer
	if got := answered.Load(); got != coldKeys*callersPerKey {
		t.Errorf("%d callers answered, want %d", got, coldKeys*callersPerKey)
	}
	cl.Close()
	cc.Close()
	goleak.VerifyNone(t, before)
}

func TestNode_CloseMidLoadsAndRefreshesLeavesNothingBehind(t *testing.T) {
	closeMidLoad(t, func(n *node.Node) {
		// The drain gives in-flight calls until ctx ends; these wait on a
		// database that never answers, so the deadline cuts them.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Logf("Close: %v", err)
		}
	})
}

func TestNode_KillMidLoadsAndRefreshesLeavesNothingBehind(t *testing.T) {
	closeMidLoad(t, (*node.Node).Kill)
}

// New that fails half-way (the gRPC or gossip address taken, the second
// namespace invalid) releases what it opened before failing: no goroutine
// is left and the journal's file lock is free again.
func TestNew_FailingHalfWayReleasesWhatItOpened(t *testing.T) {
	for _, taken := range []string{"grpc", "gossip", "namespace"} {
		t.Run(taken, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer lis.Close()
			path := filepath.Join(t.TempDir(), "journal.db")
			db := clustertest.NewFakeDB()
			cfg := node.Config{
				Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
				Namespaces: []node.NamespaceSpec{{
					Policy: strategy.Policy{Name: "orders", Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Minute},
					Loader: db, Writer: db,
				}},
				Journal:       node.JournalConfig{Path: path},
				HotCacheBytes: 1 << 20,
				Logger:        clustertest.Logger(t, "n1", nil),
			}
			switch taken {
			case "grpc":
				cfg.GRPCAddr = lis.Addr().String()
			case "gossip":
				cfg.GossipAddr = lis.Addr().String()
			case "namespace": // the second is refused after the first was built
				cfg.Namespaces = append(cfg.Namespaces, node.NamespaceSpec{Policy: strategy.Policy{Name: "bad", RefreshAhead: 2}})
			}
			n, err := node.New(cfg)
			if err == nil {
				n.Kill()
				t.Fatalf("New with the %s taken or invalid succeeded", taken)
			}
			t.Logf("New: %v", err)
			goleak.VerifyNone(t, before)
			j, err := journal.Open(path, journal.Options{LockTimeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("the journal is still held after New failed: %v", err)
			}
			j.Close()
		})
	}
}
