package resp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/rawnet"
)

// conn is one client connection. One goroutine runs it: reads a batch of
// commands, executes their ops, writes the replies, and reads again.
type conn struct {
	s      *Server
	nc     net.Conn
	rd     *reader
	w      *writer
	ctx    context.Context
	cancel context.CancelFunc

	id        int64
	created   time.Time
	remote    string
	principal auth.Principal
	name      string
	libName   string
	libVer    string
	// cluster is set once the client sent a CLUSTER command, READONLY,
	// READWRITE or ASKING (from the start with Config.RedirectAll): it
	// routes keys itself and gets MOVED for keys another node owns; other
	// clients have them forwarded.
	cluster bool
	quit    bool
	// stopping is set when the server shuts down gracefully (stopReading).
	stopping atomic.Bool
	lastCmd  string // the latest command's name (CLIENT INFO)
	method   string // and its audit method

	b       batch
	waiting chan struct{} // semaphore of Config.MaxWaiting
}

// batch is the commands read and not yet answered, and their ops.
type batch struct {
	argv    [][]byte // arguments of every command of the batch
	ops     []engine.Op
	results []engine.Result
	replies []pending
	keys    map[keyRef]bool // key → written by an op of the batch
	bytes   int
	wg      sync.WaitGroup
}

type keyRef struct{ ns, key string }

// pending is one command's reply, written once its ops have results.
type pending struct {
	first, n int // its ops: batch.ops[first:first+n]
	kind     replyKind
	fn       func(w *writer, rs []engine.Result) // kind replyFunc
	msg      string                              // kind replyError, replySimple
}

type replyKind uint8

const (
	replyFunc replyKind = iota
	replyError
	replySimple
	replyBulk // a Get: its value, or null
	replyOK   // an op that returns nothing, or its error
)

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s: s, nc: nc, ctx: ctx, cancel: cancel, id: s.nextID.Add(1), created: s.cfg.Now(),
		remote: nc.RemoteAddr().String(), waiting: make(chan struct{}, s.cfg.MaxWaiting),
		cluster: s.redirectAll.Load() && s.cfg.Topology != nil,
	}
	var rw io.ReadWriter = nc
	if r := rawnet.New(nc); r != nil { // plain TCP on Linux
		rw = r
	}
	c.rd = newReader(rw, s.lim)
	c.w = newWriter(rw)
	c.b.keys = map[keyRef]bool{}
	return c
}

// stopReading makes the connection's next read fail, so that serve
// answers the commands read so far, lingers (linger) and returns. Commands
// the client sent and the node had not read are not run.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	_ = c.nc.SetReadDeadline(time.Now())
}

// linger ends a stopping connection after its last reply: it closes its
// sending side, so the client reads every reply and then the end, and
// discards what the client still sends until the client closes or
// lingerTimeout passes. Closing a socket with unread bytes in it would send
// a reset, and the client could lose the replies not yet read.
func (c *conn) linger() {
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.nc.(closeWriter)
	if !ok || cw.CloseWrite() != nil {
		return
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, c.nc)
}

// close cuts the connection; serve then returns.
func (c *conn) close() {
	c.cancel()
	c.nc.Close()
}

func (c *conn) serve() {
	defer c.close()
	if tc, ok := c.nc.(*tls.Conn); ok {
		p, err := c.s.tlsHandshake(c.ctx, tc)
		if err != nil {
			c.s.log.Debug("resp: TLS handshake or client certificate refused", "remote", c.remote, "err", err)
			return
		}
		c.principal = p
	}
	for !c.quit {
		var err error
		b := &c.b
		b.argv = b.argv[:0]
		if b.argv, _, err = c.rd.next(b.argv, true); err != nil {
			if c.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				c.linger()
				return
			}
			c.readFailed(err)
			return
		}
		c.dispatch(b.argv)
		for !c.quit && len(b.ops) < c.s.cfg.MaxBatch && b.bytes < maxBatchBytes && c.rd.buffered() > 0 {
			start := len(b.argv)
			var ok bool
			if b.argv, ok, err = c.rd.next(b.argv, false); err != nil || !ok {
				break // a protocol error is met again by the blocking read
			}
			c.dispatch(b.argv[start:])
		}
		c.execute()
		if err := c.flush(); err != nil {
			return
		}
	}
}

// readFailed answers a protocol error before the connection closes.
func (c *conn) readFailed(err error) {
	if errors.Is(err, ErrProtocol) {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		c.w.err("ERR " + err.Error())
		_ = c.flush()
		return
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.s.log.Debug("resp: read failed", "remote", c.remote, "err", err)
	}
}

// flush sends the replies written (within the deadline execute set).
func (c *conn) flush() error { return c.w.flush() }

// reply queues a reply with no ops.
func (c *conn) reply(fn func(w *writer)) {
	c.b.replies = append(c.b.replies, pending{first: len(c.b.ops), kind: replyFunc, fn: func(w *writer, _ []engine.Result) { fn(w) }})
}

// replyErr queues an error reply.
func (c *conn) replyErr(msg string) {
	c.b.replies = append(c.b.replies, pending{first: len(c.b.ops), kind: replyError, msg: msg})
}

// replySimple queues a simple string reply.
func (c *conn) replySimple(msg string) {
	c.b.replies = append(c.b.replies, pending{first: len(c.b.ops), kind: replySimple, msg: msg})
}

// addOps queues ops and the reply that their results make. A command whose
// keys an earlier command of the batch wrote, or that writes a key one
// read, runs after the batch so far has executed.
func (c *conn) addOps(ops []engine.Op, kind replyKind, fn func(w *writer, rs []engine.Result)) {
	b := &c.b
	if len(b.ops) > 0 && c.conflicts(ops) {
		c.execute()
	}
	for _, op := range ops {
		b.bytes += len(op.Key) + len(op.Value)
		r := keyRef{op.Namespace, op.Key}
		b.keys[r] = b.keys[r] || isWrite(op.Kind)
	}
	b.replies = append(b.replies, pending{first: len(b.ops), n: len(ops), kind: kind, fn: fn})
	first := len(b.ops)
	b.ops = append(b.ops, ops...)
	for i := first; i < len(b.ops); i++ {
		b.ops[i].Method = c.method // the batch mixes commands: the audit log names each op's
	}
}

func (c *conn) conflicts(ops []engine.Op) bool {
	for _, op := range ops {
		written, seen := c.b.keys[keyRef{op.Namespace, op.Key}]
		if seen && (written || isWrite(op.Kind)) {
			return true
		}
	}
	return false
}

func isWrite(k engine.Kind) bool {
	switch k {
	case engine.Get, engine.TTL, engine.Lease:
		return false
	}
	return true
}

// execute runs the batch's ops in one Execute call, waits for their
// results and writes every queued reply in order.
func (c *conn) execute() {
	b := &c.b
	n := len(b.ops)
	if cap(b.results) < n {
		b.results = make([]engine.Result, n)
	}
	b.results = b.results[:n]
	if n > 0 {
		b.wg.Add(n)
		caller := engine.Caller{Principal: c.principal, Remote: c.remote, Method: c.method}
		c.s.cfg.Engine.Execute(c.ctx, caller, b.ops, func(i int, r engine.Result) {
			b.results[i] = r
			b.wg.Done()
		}, c.spawn)
		b.wg.Wait()
	}
	// Replies may fill the write buffer and block on a client that does
	// not read: it has WriteTimeout to take them.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	for _, p := range b.replies {
		rs := b.results[p.first : p.first+p.n]
		switch p.kind {
		case replyError:
			c.w.err(p.msg)
		case replySimple:
			c.w.simple(p.msg)
		case replyBulk:
			if rs[0].Err != nil {
				c.w.err(errorReply(rs[0].Err))
			} else {
				c.w.bulkOrNull(rs[0].Value, rs[0].Found)
			}
		case replyOK:
			if err := firstErr(rs); err != nil {
				c.w.err(errorReply(err))
			} else {
				c.w.ok()
			}
		default:
			p.fn(c.w, rs)
		}
	}
	clear(b.ops) // drop the values for the collector
	b.ops, b.replies, b.bytes = b.ops[:0], b.replies[:0], 0
	clear(b.results)
	clear(b.keys)
}

// spawn runs an op that waits on a goroutine of its own; while MaxWaiting
// wait, it blocks Execute.
func (c *conn) spawn(f func()) {
	c.waiting <- struct{}{}
	go func() {
		defer func() { <-c.waiting }()
		f()
	}()
}

func firstErr(rs []engine.Result) error {
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}
