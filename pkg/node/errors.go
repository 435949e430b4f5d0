package node

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Errors of the node. They are mapped to gRPC codes only at the RPC edge, by
// toStatus.
var (
	// ErrUnknownNamespace: the request names a namespace the config lacks.
	ErrUnknownNamespace = errors.New("unknown namespace")
	// ErrNotReady: the node has not built its ring yet, or is shutting down.
	ErrNotReady = errors.New("node not ready: it has not joined its cluster yet, or it is stopping; retry, or use another node")
	// ErrOwnerUnreachable: the key's owner could not be reached. The node
	// does not fall back to loading locally: that would turn one node's
	// outage into a stampede on the database.
	ErrOwnerUnreachable = errors.New("owner unreachable")
	// ErrTooManyKeys: a GetMany asked for more keys than MaxBatchKeys.
	ErrTooManyKeys = errors.New("too many keys")
)

// toStatus maps an error to the gRPC status a client should see.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

func codeOf(err error) codes.Code {
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	switch {
	// A deadline or cancellation says more than the layer it hit (a
	// write-through commit that timed out is not an unreachable database),
	// and clients must not retry it as UNAVAILABLE.
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, strategy.ErrBackpressure):
		return codes.ResourceExhausted
	case errors.Is(err, strategy.ErrLeaseInvalid):
		return codes.Aborted
	case errors.Is(err, strategy.ErrRejected):
		return codes.FailedPrecondition // the database refused the write
	case errors.Is(err, strategy.ErrInvalidArgument), errors.Is(err, ErrTooManyKeys):
		return codes.InvalidArgument
	case errors.Is(err, ErrUnknownNamespace):
		return codes.NotFound
	case errors.Is(err, strategy.ErrBackend), errors.Is(err, ErrNotReady), errors.Is(err, ErrOwnerUnreachable):
		return codes.Unavailable
	case errors.Is(err, strategy.ErrNoBackend):
		return codes.FailedPrecondition
	}
	return codes.Internal
}

// journalStatus maps an error of an admin journal operation.
func journalStatus(err error) error {
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, journal.ErrFull):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, journal.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
