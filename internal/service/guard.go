package service

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/reason"
)

// Guard is the gRPC edge of authentication, authorization, admission and
// audit. Per call (or stream) it identifies the caller from its verified
// client certificate and its bearer token, refuses an unauthenticated one,
// checks the service-level roles (admin for the Admin service, peer for the
// Peer service), admits the call within the node's bounds on concurrent
// calls and streams, ends a stream whose client has stopped reading
// (deadline.go), and audits every Admin call and every refusal.
// Operations on data are authorized one by one in engine.Execute, where
// every door meets; the handlers find the caller with CallerFrom.
//
// Health checks and reflection stay open.
type Guard struct {
	Auth  *auth.Authorizer // nil: everyone may do everything
	Audit *audit.Log       // nil: no audit log
	// MaxCalls bounds the unary calls in progress on the node, MaxStreams
	// its open streams; 0 means no bound. Over a bound a call gets
	// RESOURCE_EXHAUSTED with a retry delay.
	MaxCalls, MaxStreams int64
	// SendTimeout ends a stream, with RESOURCE_EXHAUSTED, whose send has
	// waited that long for its client to read (deadline.go); 0 means
	// none.
	SendTimeout time.Duration
	// OnSendTimeout, when set, is told the client address of each stream
	// ended for its send deadline (the node strikes its connection).
	OnSendTimeout func(addr net.Addr)

	calls, streams atomic.Int64
	sendTimeouts   atomic.Uint64
	handlers       sync.WaitGroup // stream handlers run under a send deadline
}

// retryBusy is the RetryInfo delay of a call refused for the node's bounds.
const retryBusy = 100 * time.Millisecond

type callerKey struct{}

// CallerFrom returns the caller the Guard identified for ctx's call.
func CallerFrom(ctx context.Context) engine.Caller {
	c, _ := ctx.Value(callerKey{}).(engine.Caller)
	return c
}

// open reports whether method needs no credentials.
func open(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.")
}

// serviceRole returns the role a method's service needs as a whole, if any.
func serviceRole(method string) (auth.Role, bool) {
	switch {
	case strings.HasPrefix(method, "/ringcache.v1.Admin/"):
		return auth.RoleAdmin, true
	case strings.HasPrefix(method, "/ringcache.v1.Peer/"):
		return auth.RolePeer, true
	}
	return 0, false
}

// admit identifies and checks the caller of method, and returns ctx with
// the caller.
func (g *Guard) admit(ctx context.Context, method string) (context.Context, error) {
	c := engine.Caller{Method: method}
	if p, ok := peer.FromContext(ctx); ok {
		c.Remote = p.Addr.String()
	}
	var err error
	if g.Auth != nil && g.Auth.Enabled() {
		c.Principal, err = g.identify(ctx)
		role, ok := serviceRole(method)
		if err == nil && ok {
			err = g.Auth.Authorize(c.Principal, role, "")
		}
	} else if len(metadata.ValueFromIncomingContext(ctx, "authorization")) > 0 {
		// The caller believes a token protects it: say that none does.
		_ = grpc.SetHeader(ctx, metadata.Pairs(reason.AuthOffHeader, "no auth section: tokens are not checked"))
	}
	if g.Audit != nil && (err != nil || strings.HasPrefix(method, "/ringcache.v1.Admin/")) {
		r := audit.Record{Principal: c.Principal, Remote: c.Remote, Method: method, Allowed: err == nil}
		if err != nil {
			r.Reason = err.Error()
		}
		g.Audit.Write(r)
	}
	if err != nil {
		return ctx, engine.StatusErr(err)
	}
	return context.WithValue(ctx, callerKey{}, c), nil
}

// identify returns the principal of the call's credentials.
func (g *Guard) identify(ctx context.Context) (auth.Principal, error) {
	var creds auth.Credentials
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			creds.Certificate = auth.VerifiedLeaf(ti.State)
		}
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			tok, err := auth.BearerToken(v)
			if err != nil {
				return auth.Principal{}, err
			}
			creds.Token = tok
		}
	}
	return g.Auth.Identify(creds)
}

// busy is the error of a call over the node's bounds.
func busy(what string, limit int64) error {
	return reason.Status(codes.ResourceExhausted, reason.Backpressure,
		fmt.Sprintf("node busy: %s at its bound (%d); retry shortly or use another node", what, limit), retryBusy).Err()
}

// Unary is the Guard as a unary interceptor.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if open(info.FullMethod) {
		return handler(ctx, req)
	}
	if g.MaxCalls > 0 {
		if g.calls.Add(1) > g.MaxCalls {
			g.calls.Add(-1)
			return nil, busy("calls in progress", g.MaxCalls)
		}
		defer g.calls.Add(-1)
	}
	ctx, err := g.admit(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is the Guard as a stream interceptor.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if open(info.FullMethod) {
		return g.serve(srv, ss, handler)
	}
	if g.MaxStreams > 0 {
		if g.streams.Add(1) > g.MaxStreams {
			g.streams.Add(-1)
			return busy("open streams", g.MaxStreams)
		}
		defer g.streams.Add(-1)
	}
	ctx, err := g.admit(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return g.serve(srv, &guardedStream{ServerStream: ss, ctx: ctx}, handler)
}

// serve runs handler, under the send deadline when there is one.
func (g *Guard) serve(srv any, ss grpc.ServerStream, handler grpc.StreamHandler) error {
	if g.SendTimeout <= 0 {
		return handler(srv, ss)
	}
	return g.serveWithDeadline(srv, ss, handler)
}

// guardedStream is a stream whose context carries the caller.
type guardedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *guardedStream) Context() context.Context { return s.ctx }
