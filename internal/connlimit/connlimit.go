// Package connlimit bounds the connections a server holds, keeping room
// for its peers, and says when it cannot accept.
//
// Guarantees:
//   - At most Max connections from clients are open at once, and at most
//     Max+Reserved in all: a peer's connection (IsPeer) is admitted while
//     the total is under Max+Reserved, so peers get through however many
//     clients crowd the server.
//   - A connection over its bound is accepted and closed at once: its
//     client sees the connection end and can try another server, instead
//     of waiting in the kernel's backlog until it times out.
//   - When accepting fails for want of file descriptors (EMFILE, ENFILE),
//     Accept sheds the waiting connection with a spare descriptor kept for
//     the purpose, retries with a backoff instead of returning the error,
//     and Err says so until an accept succeeds again.
//   - A connection can be struck (Strike) for its client's misdeeds and is
//     closed at its Strikes'th.
//   - Err reports, in words an operator can act on, why the server cannot
//     take a new client now (descriptors exhausted, or Max reached, until
//     a twentieth of Max is free again); OnChange is called whenever that
//     changes.
package connlimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config configures a Listener.
type Config struct {
	// Max bounds the open connections of clients (not peers); 0 or
	// negative means no bound.
	Max int
	// Reserved are further connections only peers may use.
	Reserved int
	// IsPeer tells whether a connection from addr is a peer's; nil: none
	// is. It is called once per accepted connection and must be cheap.
	IsPeer func(addr net.Addr) bool
	// OnChange is called, on the accepting goroutine or a timer's, when
	// Err changes between nil and not nil. It must not block.
	OnChange func(err error)
	// Strikes, when positive, is how many strikes (Strike) close a
	// connection.
	Strikes int
	// Logger receives a line when accepting starts or stops failing and,
	// at most once every LogEvery, how many connections were refused.
	Logger *slog.Logger
}

// Errors that Err wraps.
var (
	// ErrFull: the client connections are at Max.
	ErrFull = errors.New("at its connection limit")
	// ErrNoDescriptors: accepting fails for want of file descriptors.
	ErrNoDescriptors = errors.New("cannot accept connections: out of file descriptors")
)

// Timing of the accept loop.
const (
	// LogEvery spaces the lines about refused connections.
	LogEvery = 10 * time.Second
	// failHold is how long Err keeps reporting a failed accept after the
	// last one, since the accept loop may then sit idle with no
	// connection waiting.
	failHold = 5 * time.Second
	minRetry = 5 * time.Millisecond
	shedWait = time.Millisecond
	maxRetry = time.Second
)

// Stats are a Listener's gauges and counters.
type Stats struct {
	// Clients and Peers are the connections open now.
	Clients, Peers int64
	// Refused counts connections closed at once for being over a bound;
	// AcceptErrors the failed accepts (out of descriptors); Struck the
	// connections closed for their strikes, since start.
	Refused, AcceptErrors, Struck uint64
}

// Listener wraps a net.Listener with the bounds of Config.
type Listener struct {
	net.Listener
	cfg Config
	log *slog.Logger

	clients, peers atomic.Int64
	refused        atomic.Uint64
	acceptErrs     atomic.Uint64
	struck         atomic.Uint64

	open sync.Map // remote address → *conn, for Strike

	mu         sync.Mutex
	failing    error     // the last accept error, while it holds
	failedAt   time.Time // when it happened
	failTimer  *time.Timer
	reported   error // what OnChange was last told
	full       bool  // clients reached Max and have not fallen well below
	refusedLog uint64
	loggedAt   time.Time
	spare      *os.File // closed to free a descriptor for shedding
	closed     chan struct{}
	closeOnce  sync.Once
}

// Wrap returns l with cfg's bounds.
func Wrap(l net.Listener, cfg Config) *Listener {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Listener{Listener: l, cfg: cfg, log: cfg.Logger, closed: make(chan struct{})}
	w.spare, _ = os.Open(os.DevNull) // without it, shedding is skipped
	return w
}

// Accept returns the next connection within the bounds. Connections over
// them are closed, and failures for want of descriptors retried, without
// returning; any other error is returned.
func (l *Listener) Accept() (net.Conn, error) {
	retry := minRetry
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !outOfDescriptors(err) {
				return nil, err
			}
			l.acceptErrs.Add(1)
			l.fail(err)
			l.shed()
			select {
			case <-l.closed:
				return nil, net.ErrClosed
			case <-time.After(retry):
			}
			retry = min(2*retry, maxRetry)
			continue
		}
		retry = minRetry
		l.recovered()
		peer := l.cfg.IsPeer != nil && l.cfg.IsPeer(c.RemoteAddr())
		if !l.admit(peer) {
			l.refused.Add(1)
			c.Close()
			l.noteRefused()
			continue
		}
		l.changed()
		wc := &conn{Conn: c, l: l, peer: peer}
		l.open.Store(c.RemoteAddr().String(), wc)
		return wc, nil
	}
}

// admit takes a slot for a new connection, if there is one.
func (l *Listener) admit(peer bool) bool {
	max, reserved := int64(l.cfg.Max), int64(l.cfg.Reserved)
	if max <= 0 {
		if peer {
			l.peers.Add(1)
		} else {
			l.clients.Add(1)
		}
		return true
	}
	if peer {
		if l.peers.Add(1)+l.clients.Load() > max+reserved {
			l.peers.Add(-1)
			return false
		}
		return true
	}
	if l.clients.Add(1) > max || l.clients.Load()+l.peers.Load() > max+reserved {
		l.clients.Add(-1)
		return false
	}
	return true
}

// Close closes the listener and the spare descriptor.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() {
		close(l.closed)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.failTimer != nil {
			l.failTimer.Stop()
		}
		if l.spare != nil {
			l.spare.Close()
			l.spare = nil
		}
	})
	return err
}

// Stats returns the listener's figures.
func (l *Listener) Stats() Stats {
	return Stats{Clients: l.clients.Load(), Peers: l.peers.Load(), Refused: l.refused.Load(), AcceptErrors: l.acceptErrs.Load(), Struck: l.struck.Load()}
}

// Strike counts a misdeed against the open connection from addr (a
// client that left a stream unread past its deadline) and closes the
// connection at its Strikes'th, which frees all gRPC still holds for it.
// It reports whether it closed the connection.
func (l *Listener) Strike(addr net.Addr) bool {
	if l.cfg.Strikes <= 0 || addr == nil {
		return false
	}
	v, ok := l.open.Load(addr.String())
	if !ok {
		return false
	}
	c := v.(*conn)
	if c.strikes.Add(1) != int64(l.cfg.Strikes) {
		return false
	}
	l.struck.Add(1)
	l.log.Warn("closing a connection whose client left its streams unread", "remote", addr.String(), "strikes", l.cfg.Strikes)
	c.Close()
	return true
}

// Err returns nil when a new client would be admitted, else why not.
func (l *Listener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errLocked()
}

func (l *Listener) errLocked() error {
	if l.failing != nil {
		return fmt.Errorf("%w (%v): raise the open-file limit (ulimit -n, LimitNOFILE) or lower the connection limit", ErrNoDescriptors, l.failing)
	}
	if bound := int64(l.cfg.Max); bound > 0 {
		// Full from the bound until a twentieth of it is free again, so
		// readiness does not flap with every connection that comes and
		// goes at the bound.
		n := l.clients.Load()
		if n >= bound {
			l.full = true
		} else if n < bound-max(1, bound/20) {
			l.full = false
		}
		if l.full {
			return fmt.Errorf("%w: %d client connections are open (the bound is %d) and new clients are refused", ErrFull, n, bound)
		}
	}
	return nil
}

// changed tells OnChange when Err has turned nil or not nil.
func (l *Listener) changed() {
	l.mu.Lock()
	err := l.errLocked()
	notify := (err == nil) != (l.reported == nil)
	if notify {
		l.reported = err
	}
	l.mu.Unlock()
	if notify && l.cfg.OnChange != nil {
		l.cfg.OnChange(err)
	}
}

// fail records a failed accept.
func (l *Listener) fail(err error) {
	l.mu.Lock()
	first := l.failing == nil
	l.failing, l.failedAt = err, time.Now()
	if l.failTimer == nil {
		l.failTimer = time.AfterFunc(failHold, l.expire)
	} else {
		l.failTimer.Reset(failHold)
	}
	l.mu.Unlock()
	if first {
		l.log.Error("cannot accept connections: out of file descriptors; shedding new connections until descriptors are free", "err", err)
	}
	l.changed()
}

// recovered clears a failure once an accept succeeds.
func (l *Listener) recovered() {
	l.mu.Lock()
	was := l.failing
	l.failing = nil
	l.mu.Unlock()
	if was != nil {
		l.log.Info("accepting connections again", "failed_accepts", l.acceptErrs.Load())
		l.changed()
	}
}

// expire clears a failure no accept has repeated for failHold.
func (l *Listener) expire() {
	l.mu.Lock()
	if l.failing != nil && time.Since(l.failedAt) >= failHold {
		l.failing = nil
	}
	l.mu.Unlock()
	l.changed()
}

// shed frees the spare descriptor, accepts the connection waiting in the
// backlog with it and closes that at once, then takes the spare back: the
// client is told now instead of timing out.
func (l *Listener) shed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare == nil {
		return
	}
	l.spare.Close()
	l.spare = nil
	if tl, ok := l.Listener.(*net.TCPListener); ok {
		// Hardly wait: with no connection waiting, move on. (A deadline
		// already past would fail the accept without trying it.)
		if err := tl.SetDeadline(time.Now().Add(shedWait)); err == nil {
			if c, err := tl.Accept(); err == nil {
				l.refused.Add(1)
				c.Close()
			}
			_ = tl.SetDeadline(time.Time{})
		}
	}
	l.spare, _ = os.Open(os.DevNull)
}

// noteRefused logs, at most once every LogEvery, how many connections
// were refused.
func (l *Listener) noteRefused() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.loggedAt) < LogEvery {
		return
	}
	n := l.refused.Load()
	l.log.Warn("refusing connections over the connection limit", "refused", n-l.refusedLog, "clients", l.clients.Load(), "max", l.cfg.Max)
	l.refusedLog, l.loggedAt = n, time.Now()
}

// outOfDescriptors reports whether err is EMFILE or ENFILE.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// conn gives its slot back when closed.
type conn struct {
	net.Conn
	l       *Listener
	peer    bool
	strikes atomic.Int64
	once    sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.CompareAndDelete(c.Conn.RemoteAddr().String(), c)
		if c.peer {
			c.l.peers.Add(-1)
		} else {
			c.l.clients.Add(-1)
		}
		c.l.changed()
	})
	return err
}
