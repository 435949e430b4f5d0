package auth

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/filewatch"
)

// Options tunes an Authorizer. The zero value is usable.
type Options struct {
	// Logger receives tokens file reloads and failed reloads; nil discards.
	Logger *slog.Logger
	// Now is the clock of rate limits and reloads; nil means time.Now.
	Now func() time.Time
	// ReloadInterval is the least time between two looks at the tokens
	// file; zero means filewatch.DefaultInterval (1s).
	ReloadInterval time.Duration
}

// Authorizer identifies callers and authorizes and rate-limits their
// operations under the current policy. It is safe for concurrent use.
type Authorizer struct {
	o     Options
	mu    sync.Mutex // serializes Update
	state atomic.Pointer[state]
}

// state is one policy whole: what Update swaps.
type state struct {
	policy     *policy                       // nil: no auth section, everything allowed
	tokensPath string                        // "" without a tokens file
	tokens     *filewatch.Value[*TokenTable] // nil without a tokens file
}

// New returns an Authorizer enforcing a (nil: no auth section, everything
// allowed). a must have passed config validation; New reads the tokens file
// and fails if it cannot.
func New(a *config.Auth, o Options) (*Authorizer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	z := &Authorizer{o: o}
	if err := z.Update(a); err != nil {
		return nil, err
	}
	return z, nil
}

// Update swaps in the policy of a new config (a SIGHUP reload). On error
// the current policy stays. Rate limiters start full again. A config
// without an auth section turns authorization off, and that is logged as a
// warning.
func (z *Authorizer) Update(a *config.Auth) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	next := &state{}
	if a == nil {
		if cur := z.state.Load(); cur != nil && cur.policy != nil {
			z.o.Logger.Warn("the new config has no auth section: every caller may now do everything")
		}
		z.state.Store(next)
		return nil
	}
	p, err := compile(a)
	if err != nil {
		return err
	}
	next.policy, next.tokensPath = p, a.TokensFile
	if cur := z.state.Load(); cur != nil && cur.tokensPath == a.TokensFile {
		next.tokens = cur.tokens
	} else if a.TokensFile != "" {
		next.tokens, err = filewatch.New([]string{a.TokensFile},
			func() (*TokenTable, error) { return LoadTokens(a.TokensFile) },
			filewatch.Options{Interval: z.o.ReloadInterval, Now: z.o.Now, Logger: z.o.Logger, Name: "tokens file"})
		if err != nil {
			return fmt.Errorf("auth.tokens_file: %w", err)
		}
	}
	z.state.Store(next)
	return nil
}

// Enabled reports whether an auth section is in force.
func (z *Authorizer) Enabled() bool { return z.state.Load().policy != nil }

// Identify returns the principal of c: the token's when c has a token (a
// token that matches no entry is an error wrapping ErrUnauthenticated, even
// when a certificate is also given), else the certificate's (its URI SAN,
// else its common name), else the anonymous principal. Without an auth
// section tokens are not checked and a token caller is anonymous.
func (z *Authorizer) Identify(c Credentials) (Principal, error) {
	st := z.state.Load()
	switch {
	case c.Token != "" && st.policy == nil:
		return Principal{}, nil
	case c.Token != "" && st.tokens == nil:
		return Principal{}, fmt.Errorf("%w: a bearer token was given but no tokens file is configured (auth.tokens_file)", ErrUnauthenticated)
	case c.Token != "":
		name, ok := st.tokens.Get().Lookup(c.Token)
		if !ok {
			return Principal{}, fmt.Errorf("%w: the bearer token matches no entry of the tokens file", ErrUnauthenticated)
		}
		return Principal{Name: name, Kind: Token}, nil
	case c.Certificate != nil:
		return certificatePrincipal(c.Certificate)
	}
	return Principal{}, nil
}

// Authorize returns nil when p may act in role on namespace ns (ignored for
// RoleAdmin and RolePeer), else a *DeniedError. RolePeer also needs p to be
// identified by a node certificate. It allocates only when it denies.
func (z *Authorizer) Authorize(p Principal, r Role, ns string) error {
	pol := z.state.Load().policy
	if pol == nil {
		return nil
	}
	if pol.grantOf(p).allows(r, ns) && (r != RolePeer || p.Node) {
		return nil
	}
	if r != RoleRead && r != RoleWrite {
		ns = ""
	}
	return &DeniedError{Principal: p, Role: r, Namespace: ns}
}

// MustAuthenticate reports whether p may do nothing at all until it
// authenticates: authorization is on, p presented no credentials, and the
// anonymous grant allows nothing. The Redis door then answers every
// command but AUTH, HELLO and QUIT with NOAUTH, as Redis does.
func (z *Authorizer) MustAuthenticate(p Principal) bool {
	pol := z.state.Load().policy
	return pol != nil && p.Kind == Anonymous && pol.anon.none()
}

// Allow takes one operation from p's token bucket. When the bucket is empty
// it returns false and how long until it holds one operation again. Names
// matching no entry, and anonymous callers, share the anonymous bucket; each
// name an entry or glob matches has its own.
func (z *Authorizer) Allow(p Principal) (ok bool, retryAfter time.Duration) {
	pol := z.state.Load().policy
	if pol == nil {
		return true, 0
	}
	lim := pol.grantOf(p).lim
	if lim == nil {
		return true, 0
	}
	now := z.o.Now()
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, max(time.Millisecond, time.Duration(missing/float64(lim.Limit())*float64(time.Second)))
}

// Limit is Allow as an error: nil, or a *RateLimitedError.
func (z *Authorizer) Limit(p Principal) error {
	if ok, after := z.Allow(p); !ok {
		return &RateLimitedError{Principal: p, RetryAfter: after}
	}
	return nil
}

// ReloadTokens looks at the tokens file now (a SIGHUP handler) and returns
// the error of reloading it; the previous table stays on error.
func (z *Authorizer) ReloadTokens() error {
	if t := z.state.Load().tokens; t != nil {
		return t.Reload()
	}
	return nil
}

// TokenStats counts reloads of the tokens file; LastError is the error of
// the latest one, to report.
func (z *Authorizer) TokenStats() filewatch.Stats {
	if t := z.state.Load().tokens; t != nil {
		return t.Stats()
	}
	return filewatch.Stats{}
}
