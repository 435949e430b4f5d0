// Package auth decides who a caller is and what it may do: principals from
// client certificates and bearer tokens, roles per namespace from the auth
// section of ringcache.yaml, and a token-bucket rate per principal.
//
// The guarantee: with an auth section, a call is allowed only when the
// principal that Identify returned has the role it needs in the namespace
// (Authorize returns nil); the peer role is granted only to callers
// identified by a node certificate, never by a token; a bad token is an
// error, never a fallback to anonymous. Without an auth section everything
// is allowed, as on loopback before this package. The policy and the tokens
// file are reloadable while the node runs; each call sees one policy whole.
//
// It knows no transport: a gRPC interceptor, the Pipeline stream and a RESP
// door each turn what the caller presented into Credentials (BearerToken and
// VerifiedLeaf help), call Identify once per connection or call, and then
// Authorize and Allow per operation. Those two allocate nothing when they
// allow, and match no glob per call: the grant of a name is resolved once
// and cached.
package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors. Map ErrUnauthenticated to codes.Unauthenticated,
// ErrPermissionDenied to codes.PermissionDenied and ErrRateLimited to
// codes.ResourceExhausted at the RPC edge.
var (
	// ErrUnauthenticated: no credentials where some are needed, or bad ones
	// (a token that matches no entry, a malformed authorization header).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: an authenticated principal lacks the role.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrRateLimited: the principal is over its rate (see Limit).
	ErrRateLimited = errors.New("rate limited")
)

// Role is what an operation needs.
type Role uint8

// Roles. Read and Write are per namespace; Admin and Peer are not.
const (
	RoleRead  Role = 1 << iota // Get, GetMany, Lease, WatchInvalidations
	RoleWrite                  // Set, Delete
	RoleAdmin                  // the Admin service: journal retry, drop and flush, gossip keys…
	RolePeer                   // the Peer service; node certificates only
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	case RoleAdmin:
		return "admin"
	case RolePeer:
		return "peer"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Kind says how a principal was identified.
type Kind uint8

// Kinds of principal.
const (
	Anonymous   Kind = iota // no credentials
	Token                   // a bearer token of the tokens file
	Certificate             // a verified client certificate
)

func (k Kind) String() string {
	switch k {
	case Anonymous:
		return "anonymous"
	case Token:
		return "token"
	case Certificate:
		return "certificate"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Principal is an identified caller. Its zero value is the anonymous caller.
type Principal struct {
	Name string // "" for Anonymous
	Kind Kind
	// Node is true when the caller presented a node certificate: one whose
	// extended key usages include both serverAuth and clientAuth.
	Node bool
}

func (p Principal) String() string {
	if p.Kind == Anonymous {
		return "anonymous caller"
	}
	return fmt.Sprintf("principal %q", p.Name)
}

// DeniedError is the error of a refused operation. It wraps
// ErrUnauthenticated when the caller is anonymous (credentials would help),
// else ErrPermissionDenied.
type DeniedError struct {
	Principal Principal
	Role      Role
	Namespace string // "" for admin and peer
}

func (e *DeniedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Principal.String())
	if e.Principal.Kind == Token { // a token counts before a client certificate: say which spoke
		b.WriteString(" (by its token)")
	}
	switch e.Role {
	case RoleRead, RoleWrite:
		fmt.Fprintf(&b, " may not %s namespace %q", e.Role, e.Namespace)
	case RoleAdmin:
		b.WriteString(" lacks the admin role (the Admin service needs admin: true)")
	case RolePeer:
		b.WriteString(" lacks the peer role (the Peer service needs a node certificate and peer: true)")
	default:
		fmt.Fprintf(&b, " lacks role %s", e.Role)
	}
	if e.Principal.Kind == Anonymous {
		b.WriteString(": present a client certificate or a bearer token")
	}
	return b.String()
}

// Unwrap returns ErrUnauthenticated or ErrPermissionDenied.
func (e *DeniedError) Unwrap() error {
	if e.Principal.Kind == Anonymous {
		return ErrUnauthenticated
	}
	return ErrPermissionDenied
}

// RateLimitedError is the error of Limit; it wraps ErrRateLimited.
type RateLimitedError struct {
	Principal  Principal
	RetryAfter time.Duration // when one more operation would be allowed
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%s is over its rate limit; retry after %s", e.Principal, e.RetryAfter)
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

// Credentials are what a caller presented.
type Credentials struct {
	// Certificate is the caller's client certificate as verified by the TLS
	// layer (VerifiedLeaf), nil without one. Never pass an unverified one.
	Certificate *x509.Certificate
	// Token is the bearer token (BearerToken; AUTH on RESP), "" without one.
	Token string
}

// VerifiedLeaf returns the client certificate that the TLS handshake
// verified, or nil when the caller presented none.
func VerifiedLeaf(cs tls.ConnectionState) *x509.Certificate {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return cs.VerifiedChains[0][0]
}

// BearerToken returns the token of the values of the "authorization"
// metadata key: "" when there are none, the token of one "Bearer <token>"
// (the scheme is case-insensitive), and an error wrapping
// ErrUnauthenticated for anything else. The error never quotes the value.
func BearerToken(values []string) (string, error) {
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", fmt.Errorf("%w: %d authorization values, want one \"Bearer <token>\"", ErrUnauthenticated, len(values))
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", fmt.Errorf("%w: the authorization value is not \"Bearer <token>\"", ErrUnauthenticated)
	}
	return token, nil
}

// IsNodeCertificate reports whether c is a node certificate: its extended
// key usages include both serverAuth and clientAuth (ringcachectl certs node
// makes such certificates; a client certificate has clientAuth only).
func IsNodeCertificate(c *x509.Certificate) bool {
	var server, client bool
	for _, u := range c.ExtKeyUsage {
		server = server || u == x509.ExtKeyUsageServerAuth
		client = client || u == x509.ExtKeyUsageClientAuth
	}
	return server && client
}

// certificatePrincipal names the caller of a verified certificate: its first
// URI SAN if any, else its common name.
func certificatePrincipal(c *x509.Certificate) (Principal, error) {
	name := c.Subject.CommonName
	if len(c.URIs) > 0 {
		name = c.URIs[0].String()
	}
	if name == "" {
		return Principal{}, fmt.Errorf("%w: the client certificate names no principal (no URI SAN, no common name)", ErrUnauthenticated)
	}
	return Principal{Name: name, Kind: Certificate, Node: IsNodeCertificate(c)}, nil
}
