// Package reason names why a ringcache call failed, for programs: the
// google.rpc.ErrorInfo reason (domain "ringcache.io") and the
// google.rpc.RetryInfo delay that a node attaches to every status it
// produces. Clients decide retries and circuit-breaker trips on the code
// and the reason, never on the message, which is for people and may change.
//
// A status without ringcache's ErrorInfo came from gRPC itself: the
// connection could not be made or broke.
package reason

import (
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Domain is the ErrorInfo domain of ringcache's reasons.
const Domain = "ringcache.io"

// Reasons. cache.proto documents each with its code.
const (
	NodeNotReady        = "NODE_NOT_READY"
	OwnerUnreachable    = "OWNER_UNREACHABLE"
	OwnerConnectionLost = "OWNER_CONNECTION_LOST"
	BackendUnavailable  = "BACKEND_UNAVAILABLE"
	ReplicaUnavailable  = "REPLICA_UNAVAILABLE"
	Backpressure        = "BACKPRESSURE"
	RateLimited         = "RATE_LIMITED"
	InvalidArgument     = "INVALID_ARGUMENT"
	UnknownNamespace    = "UNKNOWN_NAMESPACE"
	NotFound            = "NOT_FOUND"
	LeaseInvalid        = "LEASE_INVALID"
	WriteRejected       = "WRITE_REJECTED"
	StaleVersion        = "STALE_VERSION"
	NoBackend           = "NO_BACKEND"
	Unauthenticated     = "UNAUTHENTICATED"
	PermissionDenied    = "PERMISSION_DENIED"
	ClockSkew           = "CLOCK_SKEW"
	Timeout             = "TIMEOUT"
	Canceled            = "CANCELED"
	Internal            = "INTERNAL"
)

// Status returns a status with code and msg that carries reason and, when
// retry is positive, a RetryInfo delay.
func Status(code codes.Code, reason, msg string, retry time.Duration) *status.Status {
	st := status.New(code, msg)
	if code == codes.OK {
		return st
	}
	info := &errdetails.ErrorInfo{Reason: reason, Domain: Domain}
	var withd *status.Status
	var err error
	if retry > 0 {
		withd, err = st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	} else {
		withd, err = st.WithDetails(info)
	}
	if err != nil { // only for code OK, excluded above
		return st
	}
	return withd
}

// Of returns the ringcache reason err carries, or "" when it carries none
// (it is no status, or gRPC produced it).
func Of(err error) string {
	r, _ := details(err)
	return r
}

// RetryDelay returns the RetryInfo delay err carries, or 0.
func RetryDelay(err error) time.Duration {
	_, d := details(err)
	return d
}

// FromNode reports whether err is a status a ringcache node produced (it
// carries a ringcache reason), as opposed to gRPC's own report of a
// connection that failed.
func FromNode(err error) bool { return Of(err) != "" }

func details(err error) (reason string, retry time.Duration) {
	var se interface{ GRPCStatus() *status.Status }
	if err == nil || !errors.As(err, &se) {
		return "", 0
	}
	for _, d := range se.GRPCStatus().Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if d.Domain == Domain {
				reason = d.Reason
			}
		case *errdetails.RetryInfo:
			retry = d.RetryDelay.AsDuration()
		}
	}
	return reason, retry
}

// AuthOffHeader is the response header a node without authorization (its
// config has no auth section) sends to a caller that presented a bearer
// token: the token protects nothing there. ringcachectl and pkg/client
// turn it into a warning, so that a cluster deployed without its auth
// section does not pass for a protected one.
const AuthOffHeader = "ringcache-auth-off"
