package engine

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/peer"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/internal/replica"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Errors of the engine. Like every error on the request path they travel
// wrapped with %w and become gRPC statuses only at the edge, in Status.
var (
	// ErrUnknownNamespace: the request names a namespace the config lacks.
	ErrUnknownNamespace = errors.New("unknown namespace")
	// ErrNotReady: the node has not joined its cluster yet, or it is
	// stopping.
	ErrNotReady = errors.New("node not ready: it has not joined its cluster yet, or it is stopping; retry, or use another node")
	// ErrLeftOut: the node's process was stopped past failure detection
	// and its cluster routes by a table without it (WatchStalls): why it
	// is not ready, while it sends its clients' ops to their owners.
	ErrLeftOut = errors.New("node not ready: this process was stopped for longer than its peers take to declare it dead, and its cluster routes without it until it takes it back (about a gossip round); it sends its clients' ops to their owners meanwhile")
	// ErrTooManyKeys: a batch is larger than Config.MaxBatch.
	ErrTooManyKeys = errors.New("too many keys")
	// ErrNoOp: a Pipeline or Forward op that carries no operation.
	ErrNoOp = errors.New("op carries no get, set, delete or lease")
)

// mapping is the one table from errors to gRPC codes and reasons. The
// first entry whose error err wraps wins, so more specific causes come
// first: a deadline says more than the layer it hit (a write-through
// commit that timed out is not an unreachable database), and clients must
// not retry it as UNAVAILABLE.
var mapping = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{auth.ErrUnauthenticated, codes.Unauthenticated, reason.Unauthenticated},
	{auth.ErrPermissionDenied, codes.PermissionDenied, reason.PermissionDenied},
	{auth.ErrRateLimited, codes.ResourceExhausted, reason.RateLimited},
	{context.DeadlineExceeded, codes.DeadlineExceeded, reason.Timeout},
	{context.Canceled, codes.Canceled, reason.Canceled},
	{strategy.ErrBackpressure, codes.ResourceExhausted, reason.Backpressure},
	{journal.ErrFull, codes.ResourceExhausted, reason.Backpressure},
	{strategy.ErrLeaseInvalid, codes.Aborted, reason.LeaseInvalid},
	{strategy.ErrRejected, codes.FailedPrecondition, reason.WriteRejected},
	{strategy.ErrStaleVersion, codes.Aborted, reason.StaleVersion},
	{strategy.ErrInvalidArgument, codes.InvalidArgument, reason.InvalidArgument},
	{ErrTooManyKeys, codes.InvalidArgument, reason.InvalidArgument},
	{ErrNoOp, codes.InvalidArgument, reason.InvalidArgument},
	{journal.ErrInvalid, codes.InvalidArgument, reason.InvalidArgument},
	{ErrUnknownNamespace, codes.NotFound, reason.UnknownNamespace},
	{journal.ErrNotFound, codes.NotFound, reason.NotFound},
	{ErrReplicaUnavailable, codes.Unavailable, reason.ReplicaUnavailable},
	{replica.ErrUnavailable, codes.Unavailable, reason.ReplicaUnavailable},
	{replica.ErrBadStream, codes.InvalidArgument, reason.InvalidArgument},
	{replica.ErrStopping, codes.Unavailable, reason.NodeNotReady},
	{peer.ErrUnreachable, codes.Unavailable, reason.OwnerUnreachable},
	{peer.ErrConnectionLost, codes.Unavailable, reason.OwnerConnectionLost},
	{strategy.ErrBackend, codes.Unavailable, reason.BackendUnavailable},
	{ErrNotReady, codes.Unavailable, reason.NodeNotReady},
	{strategy.ErrClosed, codes.Unavailable, reason.NodeNotReady},
	{peer.ErrClosed, codes.Unavailable, reason.NodeNotReady},
	{strategy.ErrNoBackend, codes.FailedPrecondition, reason.NoBackend},
	{hlc.ErrTooFarAhead, codes.FailedPrecondition, reason.ClockSkew},
}

// Status maps err to the gRPC status a caller should see: its code, its
// message, and the ErrorInfo reason (and RetryInfo delay) programs decide
// on. A status error (a peer's answer passed on) is kept as it is.
func Status(err error) *status.Status {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	var retry time.Duration
	if rl := (*auth.RateLimitedError)(nil); errors.As(err, &rl) {
		retry = rl.RetryAfter
	}
	for _, m := range mapping {
		if errors.Is(err, m.err) {
			return reason.Status(m.code, m.reason, err.Error(), retry)
		}
	}
	return reason.Status(codes.Internal, reason.Internal, err.Error(), 0)
}

// StatusErr is Status(err).Err().
func StatusErr(err error) error { return Status(err).Err() }
