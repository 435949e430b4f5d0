// Package resp is the Redis protocol (RESP2 and RESP3) front door of a
// node. It turns each Redis command into engine.Ops and runs them through
// engine.Execute, the one request path every door shares, so
// authorization, rate limits, audit, routing to the key's owner,
// forwarding and the hot cache happen there exactly as for gRPC; it never
// serves or routes a key itself.
//
// Guarantees:
//   - Commands already buffered on one connection run as one batch: one
//     Execute call (one forward per owner); replies come in command order.
//     Per key, commands keep their order: a command that touches a key an
//     earlier command of the batch wrote (or writes one it read) starts a
//     new batch.
//   - Bad input never takes the node down: a malformed frame gets a
//     "Protocol error" reply and the connection closes; commands, arguments
//     and batches are bounded, the read buffer grows only as bytes arrive,
//     and a client that stops reading its replies is cut after
//     Config.WriteTimeout.
//   - A key "NS:KEY" addresses KEY in namespace NS when NS is configured;
//     any other key is a key of Config.DefaultNamespace, whole.
//
// docs/resp.md lists the commands, the error replies and the cluster
// behaviour.
package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/engine"
)

// Defaults of Config.
const (
	DefaultMaxBatch     = 1000
	DefaultMaxConns     = 10000
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxWaiting bounds the ops of one connection that wait (a load,
	// a forward, a database or journal write) at once.
	DefaultMaxWaiting = 128
	// handshakeTimeout bounds a TLS handshake.
	handshakeTimeout = 10 * time.Second
	// keyMargin is what Limits allow beyond the largest value: the key and
	// the command's other arguments.
	keyMargin = 64 << 10
	// maxBatchBytes bounds the argument bytes of the commands in one batch;
	// a batch also ends at Config.MaxBatch ops.
	maxBatchBytes = 4 << 20
)

// NodeStats are the node's figures INFO reports.
type NodeStats struct {
	// Keys is the number of entries in the node's memory (an estimate),
	// UsedMemory and MaxMemory their bytes and bound, Evictions the
	// entries evicted for room.
	Keys, UsedMemory, MaxMemory, Evictions uint64
}

// Config configures a Server. Engine and DefaultNamespace are required.
type Config struct {
	Engine *engine.Engine
	// DefaultNamespace holds every key that does not start with a
	// configured namespace and a colon.
	DefaultNamespace string
	// Auth identifies AUTH tokens and client certificates and checks the
	// admin role of FLUSHDB; nil: no auth section (AUTH fails as on a Redis
	// without a password). Ops are authorized in the engine.
	Auth *auth.Authorizer
	// TLS, when set, serves RESP over TLS; a verified client certificate
	// identifies its caller.
	TLS *tls.Config
	// MaxBatch bounds the ops of one Execute call; default DefaultMaxBatch.
	// It also bounds a command's keys (MGET, MSET, DEL, EXISTS).
	MaxBatch int
	// MaxValueBytes is the largest value any namespace allows: with a
	// margin for the key, it bounds one argument.
	MaxValueBytes int
	// MaxConns bounds the open connections; default DefaultMaxConns.
	MaxConns int
	// MaxWaiting bounds a connection's ops that wait at once; default
	// DefaultMaxWaiting.
	MaxWaiting int
	// WriteTimeout cuts a connection whose client does not read its
	// replies for that long; default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Topology is the cluster as Redis Cluster clients see it; nil: the
	// CLUSTER commands answer that cluster support is disabled, and no
	// connection is redirected.
	Topology Topology
	// RedirectAll treats every connection as cluster-aware from its start,
	// as Redis Cluster does: a key another node owns gets MOVED on any
	// connection, not only on one that sent a cluster command. For clients
	// that are all cluster clients; standalone ones then see MOVED.
	RedirectAll bool
	// Stats returns the node's figures for INFO; nil reports zeros.
	Stats func() NodeStats
	// Flush empties every namespace on every member (FLUSHDB, FLUSHALL,
	// after the admin role is checked); nil: those commands are refused.
	Flush func(ctx context.Context) error
	// Name is the node's name (INFO, HELLO); Version the server's version.
	Name, Version string
	Logger        *slog.Logger
	// Now is the clock of EXAT and PXAT; nil means time.Now.
	Now func() time.Time
}

// Server serves RESP connections. Close ends them all.
type Server struct {
	cfg        Config
	log        *slog.Logger
	lim        Limits
	namespaces map[string]string // name → name: a lookup that yields the interned name
	commands   map[string]*command
	started    time.Time
	// redirectAll is Config.RedirectAll, changed by SetRedirectAll.
	redirectAll atomic.Bool

	mu     sync.Mutex
	lis    []net.Listener
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup

	nextID atomic.Int64
	stats  struct {
		conns                        atomic.Int64
		received, rejected, commands atomic.Uint64
	}
}

// ErrNoDefaultNamespace: the RESP door needs a default namespace that is
// configured.
var ErrNoDefaultNamespace = errors.New("resp: no default namespace")

// New returns a Server; Serve starts serving a listener.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("resp: an engine is required")
	}
	if _, err := cfg.Engine.Namespace(cfg.DefaultNamespace); err != nil {
		return nil, fmt.Errorf("%w: resp.default_namespace %q is not a configured namespace (have %v)", ErrNoDefaultNamespace, cfg.DefaultNamespace, cfg.Engine.Names())
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxWaiting <= 0 {
		cfg.MaxWaiting = DefaultMaxWaiting
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Stats == nil {
		cfg.Stats = func() NodeStats { return NodeStats{} }
	}
	s := &Server{cfg: cfg, log: cfg.Logger, namespaces: map[string]string{}, commands: commandTable(), conns: map[*conn]struct{}{}, started: cfg.Now()}
	for _, n := range cfg.Engine.Names() {
		s.namespaces[n] = n
	}
	s.redirectAll.Store(cfg.RedirectAll)
	maxBulk := max(cfg.MaxValueBytes, 0) + keyMargin
	s.lim = Limits{
		MaxArgs: 2*cfg.MaxBatch + 8, // MSET of MaxBatch pairs
		MaxBulk: maxBulk,
		// One large value, or a batch-sized MSET of small ones.
		MaxCommand: max(maxBulk, 64<<20),
	}
	return s, nil
}

// SetRedirectAll changes Config.RedirectAll for the connections accepted
// from now on; those open keep what they have.
func (s *Server) SetRedirectAll(all bool) { s.redirectAll.Store(all) }

// Serve accepts connections on lis until Close; it returns nil after
// Close, else the accept error.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lis.Close()
		return nil
	}
	s.lis = append(s.lis, lis)
	s.mu.Unlock()
	var delay time.Duration
	for {
		nc, err := lis.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // out of file descriptors and the like
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("resp: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.accept(nc)
	}
}

// accept starts serving nc, or refuses it over MaxConns.
func (s *Server) accept(nc net.Conn) {
	s.stats.received.Add(1)
	if s.stats.conns.Load() >= int64(s.cfg.MaxConns) {
		s.stats.rejected.Add(1)
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte("-ERR max number of clients reached\r\n"))
		nc.Close()
		return
	}
	c := s.newConn(nc)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.stats.conns.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.stats.conns.Add(-1)
		}()
		c.serve()
	}()
}

// Close stops the listeners, cuts every connection and waits for their
// goroutines (and the ops they wait on) to end: Shutdown with no grace.
func (s *Server) Close() error { return s.Shutdown(0) }

// Shutdown stops the listeners and lets every connection answer the
// commands it has read, as Redis's SHUTDOWN finishes the command in
// progress: each stops reading, finishes its batch, writes the replies,
// ends its sending side and closes once the client has (lingerTimeout at
// most), so the replies are not lost to a reset. A client then learns the
// outcome of every command it was answered for, and that the others were
// not run. Connections still open after grace (an op waiting on the
// database, a client that does not read its replies) are cut; grace ≤ 0
// cuts them at once. Shutdown waits for their goroutines (and the ops
// they wait on).
func (s *Server) Shutdown(grace time.Duration) error {
	s.mu.Lock()
	s.closed = true
	for _, l := range s.lis {
		l.Close()
	}
	for c := range s.conns {
		if grace > 0 {
			c.stopReading()
		} else {
			c.close()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return nil
		case <-t.C:
		}
		s.mu.Lock()
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
	}
	<-done
	return nil
}

// lingerTimeout bounds how long a connection that stops waits for its
// client to close, after its last reply.
const lingerTimeout = time.Second

// Conns returns the number of open connections.
func (s *Server) Conns() int { return int(s.stats.conns.Load()) }

// tlsHandshake completes nc's TLS handshake and returns the principal its
// verified client certificate names, if any.
func (s *Server) tlsHandshake(ctx context.Context, tc *tls.Conn) (auth.Principal, error) {
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return auth.Principal{}, err
	}
	leaf := auth.VerifiedLeaf(tc.ConnectionState())
	if leaf == nil || s.cfg.Auth == nil {
		return auth.Principal{}, nil
	}
	return s.cfg.Auth.Identify(auth.Credentials{Certificate: leaf})
}
