package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/reason"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// dial opens a client connection to addr. It is the one place that chooses
// transport credentials: TLS when --tls-ca, --tls-cert or --tls-key is
// given, and a bearer token with --token or $RINGCACHE_TOKEN.
func (o *options) dial(addr string) (*grpc.ClientConn, error) {
	creds, err := o.transport()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if o.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: o.token, tls: o.tls()}),
			grpc.WithChainUnaryInterceptor(o.warnAuthOff(addr)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: %w", addr, err)
	}
	return conn, nil
}

// warnAuthOff warns, once, when the node at addr answers that it checks
// no token (reason.AuthOffHeader): its config has no auth section, so the
// --token sent protects nothing there.
func (o *options) warnAuthOff(addr string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, callOpts ...grpc.CallOption) error {
		var md metadata.MD
		err := invoker(ctx, method, req, reply, cc, append(callOpts, grpc.Header(&md))...)
		if len(md.Get(reason.AuthOffHeader)) > 0 && o.stderr != nil {
			o.authOff.Do(func() {
				fmt.Fprintf(o.stderr, "ringcachectl: warning: %s checks no token (its config has no auth section): --token protects nothing there\n", addr)
			})
		}
		return err
	}
}

// tls reports whether the TLS flags ask for TLS.
func (o *options) tls() bool { return o.tlsCA != "" || o.tlsCert != "" || o.tlsKey != "" }

// transport returns the transport credentials of the TLS flags, read once
// per process (ringcachectl runs for moments).
func (o *options) transport() (credentials.TransportCredentials, error) {
	if !o.tls() {
		return insecure.NewCredentials(), nil
	}
	if o.creds == nil {
		if (o.tlsCert == "") != (o.tlsKey == "") {
			return nil, fmt.Errorf("--tls-cert and --tls-key go together: a client certificate needs its key")
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS13}
		if o.tlsCA != "" {
			pem, err := os.ReadFile(o.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %w", err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", o.tlsCA)
			}
		}
		if o.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
			if err != nil {
				return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		o.creds = credentials.NewTLS(cfg)
	}
	return o.creds, nil
}

// bearer sends the --token as "authorization: Bearer <token>".
type bearer struct {
	token string
	tls   bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.tls }

// node is a connection to one ringcache node.
type node struct {
	addr    string
	tls     bool // the TLS flags were given
	timeout time.Duration
	conn    *grpc.ClientConn
	cache   ringcachev1.CacheClient
	admin   ringcachev1.AdminClient
}

// connect dials addr; the connection is made lazily by the first call.
func (o *options) connect(addr string) (*node, error) {
	conn, err := o.dial(addr)
	if err != nil {
		return nil, err
	}
	return &node{
		addr:    addr,
		tls:     o.tls(),
		timeout: o.timeout,
		conn:    conn,
		cache:   ringcachev1.NewCacheClient(conn),
		admin:   ringcachev1.NewAdminClient(conn),
	}, nil
}

func (n *node) close() { _ = n.conn.Close() }

// call runs one RPC on n with a deadline of n.timeout and explains its error.
func call[Req, Resp any](ctx context.Context, n *node, rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	resp, err := rpc(ctx, req)
	if err != nil {
		var zero Resp
		return zero, n.explain(err)
	}
	return resp, nil
}

// RPCError is a failed call, printed as `CODE: message`.
type RPCError struct {
	Addr string
	Code codes.Code
	// Unreachable reports that no connection to Addr could be made.
	Unreachable bool
	// TLS reports whether the call was made with TLS (the --tls-* flags).
	TLS bool
	msg string
	err error
}

func (e *RPCError) Error() string {
	if e.Unreachable {
		return fmt.Sprintf("cannot reach ringcache node at %s (%s): %s: %s",
			e.Addr, e.hint(), codeName(e.Code), e.msg)
	}
	return codeName(e.Code) + ": " + e.msg
}

// hint says what to check for an unreachable node: a plaintext call to a
// node that serves TLS (or the other way round) fails with the transport's
// words, which name neither.
func (e *RPCError) hint() string {
	switch {
	case e.TLS && strings.Contains(e.msg, "first record does not look like a TLS handshake"):
		return "it serves plaintext: drop --tls-ca, --tls-cert and --tls-key"
	case !e.TLS && (strings.Contains(e.msg, "error reading server preface") || strings.Contains(e.msg, "connection reset by peer")):
		return fmt.Sprintf("if it serves TLS, pass --tls-ca with its CA; else check --addr or $%s: is it the gRPC port?", AddrEnv)
	}
	return fmt.Sprintf("check --addr or $%s", AddrEnv)
}

func (e *RPCError) Unwrap() error { return e.err }

// explain turns a gRPC error into an *RPCError. A call that failed while the
// connection was not ready is reported as an unreachable address.
func (n *node) explain(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &RPCError{Addr: n.addr, TLS: n.tls, Code: st.Code(), msg: st.Message(), err: err}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		e.Unreachable = n.conn.GetState() != connectivity.Ready
	}
	if st.Code() == codes.DeadlineExceeded {
		e.msg = fmt.Sprintf("no answer within %s (see --timeout)", n.timeout)
	}
	return e
}

var codeNames = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// codeName returns the canonical upper-case name of c (NOT_FOUND), as
// grpcurl and the gRPC docs spell it.
func codeName(c codes.Code) string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return c.String()
}
