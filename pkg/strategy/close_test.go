package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// slowLoader serves every key at once until block is set; then each load
// reports itself on started and waits for its context to end. A blocked
// load of a key in refresh answers "fresh" anyway (a driver that ignores
// cancellation), so the test sees where that late answer is cached.
type slowLoader struct {
	block     atomic.Bool
	started   chan string
	cancelled atomic.Int64
	refresh   func(key string) bool
}

func (l *slowLoader) Load(ctx context.Context, key string) ([]byte, bool, error) {
	if !l.block.Load() {
		return []byte("old"), true, nil
	}
	l.started <- key
	<-ctx.Done()
	if errors.Is(ctx.Err(), context.Canceled) {
		l.cancelled.Add(1)
	}
	if l.refresh(key) {
		return []byte("fresh"), true, nil
	}
	return nil, false, ctx.Err()
}

// Close in the middle of slow cold loads and refresh-ahead reloads cancels
// every one of them, returns only once they are over (their results
// cached or dropped), and leaves no goroutine behind.
func TestNamespace_CloseCancelsLoadsAndRefreshesInFlight(t *testing.T) {
	const coldKeys, callersPerKey, hotKeys = 20, 5, 8
	l := &slowLoader{started: make(chan string, coldKeys+hotKeys), refresh: func(k string) bool { return k[0] == 'h' }}
	p := readThrough()
	p.RefreshAhead = 0.5
	p.LoadTimeout = time.Hour // only Close ends the loads
	e := newEnv(t, p, l)
	for i := range hotKeys {
		mustGet(t, e.ns, fmt.Sprintf("h%d", i))
	}
	e.clock.Advance(p.TTL/2 + time.Minute) // every hot entry is due for a refresh
	before := goleak.IgnoreCurrent()

	l.block.Store(true)
	var gets []<-chan getResult
	for i := range coldKeys {
		for range callersPerKey {
			gets = append(gets, goGet(context.Background(), e.ns, fmt.Sprintf("c%d", i)))
		}
	}
	for i := range hotKeys {
		// A hit: answered from memory at once, and starts a refresh.
		if v, _ := mustGet(t, e.ns, fmt.Sprintf("h%d", i)); string(v) != "old" {
			t.Fatalf("hot key h%d = %q before its refresh, want old", i, v)
		}
	}
	for range coldKeys + hotKeys {
		recv(t, "a load to start", l.started)
	}

	e.ns.Close()

	if got := l.cancelled.Load(); got != coldKeys+hotKeys {
		t.Errorf("%d loads saw their context cancelled by Close, want all %d", got, coldKeys+hotKeys)
	}
	// A refresh that answered after Close began was cached before Close
	// returned: nothing of it runs afterwards.
	for i := range hotKeys {
		k := strategy.StoreKey("users", fmt.Sprintf("h%d", i))
		if en, ok := e.store.Get(k); !ok || string(en.Value) != "fresh" {
			t.Errorf("after Close, %s holds %q (present %v), want the refresh's late answer already cached", k, en.Value, ok)
		}
	}
	// A caller that joined its key's load before Close sees the load
	// cancelled; one that only got there once Close had begun is refused.
	// Either way it ends, and with an error.
	for _, ch := range gets {
		r := recv(t, "a cold Get to end", ch)
		joined := errors.Is(r.err, context.Canceled) && errors.Is(r.err, strategy.ErrBackend)
		if !joined && !errors.Is(r.err, strategy.ErrClosed) {
			t.Fatalf("cold Get during Close: %v, want a backend error wrapping context.Canceled, or ErrClosed", r.err)
		}
	}
	if _, _, err := e.ns.Get(context.Background(), "c-after"); !errors.Is(err, strategy.ErrClosed) {
		t.Errorf("Get of a cold key after Close: %v, want ErrClosed", err)
	}
	if s := e.ns.Stats(); s.Refreshes != hotKeys {
		t.Errorf("refreshes = %d, want %d", s.Refreshes, hotKeys)
	}
	goleak.VerifyNone(t, before)
}

// A hit on an entry due for a refresh after Close still answers from
// memory, and starts no load.
func TestNamespace_NoRefreshAfterClose(t *testing.T) {
	l := &countingLoader{fn: func(context.Context, string) ([]byte, bool, error) { return []byte("v"), true, nil }}
	p := readThrough()
	p.RefreshAhead = 0.5
	e := newEnv(t, p, l)
	mustGet(t, e.ns, "k")
	e.clock.Advance(p.TTL/2 + time.Minute)
	e.ns.Close()
	before := goleak.IgnoreCurrent()
	if v, found := mustGet(t, e.ns, "k"); !found || string(v) != "v" {
		t.Fatalf("Get after Close = %q, %v; want the cached v", v, found)
	}
	waitFor(t, "the refresh attempt to end", func() bool { return goleak.Find(before) == nil })
	if got := l.calls.Load(); got != 1 {
		t.Errorf("loader called %d times, want 1 (no refresh after Close)", got)
	}
}

// gatedStore holds every write of a loaded result until the gate opens.
type gatedStore struct {
	strategy.Store
	gate    chan struct{}
	waiting atomic.Int64
}

func (s *gatedStore) hold() {
	s.waiting.Add(1)
	<-s.gate
}

func (s *gatedStore) SetIfNewer(k string, e strategy.Entry) bool {
	s.hold()
	return s.Store.SetIfNewer(k, e)
}

func (s *gatedStore) SetIfAbsent(k string, e strategy.Entry) bool {
	s.hold()
	return s.Store.SetIfAbsent(k, e)
}

func (s *gatedStore) SetUnless(k string, e strategy.Entry, keep func(strategy.Entry) bool) bool {
	s.hold()
	return s.Store.SetUnless(k, e, keep)
}

// Close waits for a load that answered late to finish caching its result:
// Close does not return while the store is still being written.
func TestNamespace_CloseWaitsForLateResultsToBeCached(t *testing.T) {
	const keys = 8
	e := newEnv(t, readThrough(), strategy.LoaderFunc(func(context.Context, string) ([]byte, bool, error) { return nil, false, nil }))
	st := &gatedStore{Store: e.store, gate: make(chan struct{})}
	started := make(chan string, keys)
	p := readThrough()
	p.Name = "gated"
	ns, err := newNamespace(t, p, strategy.Deps{Store: st, Loader: strategy.LoaderFunc(func(ctx context.Context, key string) ([]byte, bool, error) {
		started <- key
		<-ctx.Done()
		return []byte("late"), true, nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { _, _, _ = ns.Get(context.Background(), fmt.Sprint(i)) })
	}
	for range keys {
		recv(t, "a load to start", started)
	}
	closed := make(chan struct{})
	go func() { ns.Close(); close(closed) }()
	waitFor(t, "every late result to reach the store", func() bool { return st.waiting.Load() == keys })
	select {
	case <-closed:
		t.Fatal("Close returned while loaded results were still being cached")
	default:
	}
	close(st.gate)
	recv(t, "Close to return", closed)
	wg.Wait()
}
