package auth

import (
	"cmp"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/ringcache/ringcache/internal/config"
)

// maxCachedNames bounds the names a policy remembers the grant of (and
// keeps a rate limiter for) beyond its exact entries. Names past it are
// matched per call and share their glob's limiter; certificate names come
// from the cluster's CA and token names from its tokens file, so this is a
// guard, not a limit anyone should reach.
const maxCachedNames = 4096

// grant is a compiled config.Grant, with the anonymous grant merged in.
type grant struct {
	ns    map[string]Role // read and write roles per namespace
	all   Role            // roles in every namespace
	admin bool
	peer  bool
	limit rate.Limit // 0: unlimited
	burst int
	lim   *rate.Limiter // nil when unlimited
}

func (g *grant) allows(r Role, ns string) bool {
	switch r {
	case RoleRead, RoleWrite:
		return (g.all|g.ns[ns])&r != 0
	case RoleAdmin:
		return g.admin
	case RolePeer:
		return g.peer
	}
	return false
}

// none reports whether g allows nothing.
func (g *grant) none() bool { return g.all == 0 && len(g.ns) == 0 && !g.admin && !g.peer }

// withLimiter returns a copy of g with a limiter of its own.
func (g *grant) withLimiter() *grant {
	c := *g
	if c.limit > 0 {
		c.lim = rate.NewLimiter(c.limit, c.burst)
	}
	return &c
}

type glob struct {
	pattern string
	g       *grant // its limiter is shared by names past maxCachedNames
}

// policy is a compiled auth section. It is immutable but for its cache of
// names resolved through globs.
type policy struct {
	exact map[string]*grant
	globs []glob // most specific first
	anon  *grant

	mu     sync.Mutex                        // serializes writers of names
	names  atomic.Pointer[map[string]*grant] // copy on write: readers take no lock
	nNames atomic.Int64
}

func compile(a *config.Auth) (*policy, error) {
	anon, err := compileGrant("auth.anonymous", a.Anonymous, nil)
	if err != nil {
		return nil, err
	}
	p := &policy{exact: map[string]*grant{}, anon: anon.withLimiter()}
	for name, cg := range a.Principals {
		g, err := compileGrant("auth.principals."+name, cg, anon)
		if err != nil {
			return nil, err
		}
		if !strings.ContainsAny(name, `*?[\`) {
			p.exact[name] = g.withLimiter()
			continue
		}
		if _, err := path.Match(name, ""); err != nil {
			return nil, fmt.Errorf("auth.principals: %q is not a valid glob: %w", name, err)
		}
		p.globs = append(p.globs, glob{pattern: name, g: g.withLimiter()})
	}
	slices.SortFunc(p.globs, func(a, b glob) int {
		if c := cmp.Compare(len(b.pattern), len(a.pattern)); c != 0 {
			return c
		}
		return strings.Compare(a.pattern, b.pattern)
	})
	p.names.Store(&map[string]*grant{})
	return p, nil
}

func compileGrant(field string, cg config.Grant, anon *grant) (*grant, error) {
	g := &grant{ns: map[string]Role{}, admin: cg.Admin, peer: cg.Peer}
	for ns, roles := range cg.Namespaces {
		var rs Role
		for _, r := range roles {
			switch r {
			case config.RoleRead:
				rs |= RoleRead
			case config.RoleWrite:
				rs |= RoleWrite
			default:
				return nil, fmt.Errorf("%s.namespaces.%s: %q is not a namespace role", field, ns, r)
			}
		}
		if ns == config.AllNamespaces {
			g.all |= rs
		} else {
			g.ns[ns] |= rs
		}
	}
	if anon != nil {
		g.all |= anon.all
		for ns, rs := range anon.ns {
			g.ns[ns] |= rs
		}
	}
	if cg.Rate < 0 || math.IsNaN(cg.Rate) || cg.Burst < 0 {
		return nil, fmt.Errorf("%s: rate and burst must not be negative", field)
	}
	if cg.Rate > 0 && !math.IsInf(cg.Rate, 1) {
		g.limit, g.burst = rate.Limit(cg.Rate), cg.Burst
		if g.burst == 0 {
			g.burst = int(min(math.Ceil(cg.Rate), math.MaxInt32))
		}
	}
	return g, nil
}

// grantOf returns the grant of p: the anonymous one for an anonymous
// caller, else its exact entry, else its most specific glob, else the
// anonymous one.
func (p *policy) grantOf(pr Principal) *grant {
	if pr.Kind == Anonymous {
		return p.anon
	}
	if g, ok := p.exact[pr.Name]; ok {
		return g
	}
	if g, ok := (*p.names.Load())[pr.Name]; ok {
		return g
	}
	return p.resolve(pr.Name)
}

// resolve matches name against the globs once and remembers the result.
func (p *policy) resolve(name string) *grant {
	var g *grant
	for _, gl := range p.globs {
		if ok, _ := path.Match(gl.pattern, name); ok {
			g = gl.g
			break
		}
	}
	if p.nNames.Load() >= maxCachedNames {
		if g == nil {
			return p.anon
		}
		return g
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.names.Load()
	if cached, ok := old[name]; ok {
		return cached
	}
	if g == nil {
		g = p.anon // names matching no entry share the anonymous limiter
	} else {
		g = g.withLimiter() // each name a glob matches has its own bucket
	}
	next := make(map[string]*grant, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = g
	p.names.Store(&next)
	p.nNames.Add(1)
	return g
}
