package auth_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/testclock"
)

var (
	web      = auth.Principal{Name: "web", Kind: auth.Token}
	ops      = auth.Principal{Name: "ops", Kind: auth.Certificate}
	node0    = auth.Principal{Name: "ringcache-0", Kind: auth.Certificate, Node: true}
	nodeTok  = auth.Principal{Name: "ringcache-0", Kind: auth.Token}
	mallory  = auth.Principal{Name: "mallory", Kind: auth.Certificate}
	nobody   = auth.Principal{}
	webAsNod = auth.Principal{Name: "web", Kind: auth.Certificate, Node: true}
)

func TestAuthorize_IssueExample(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	type want int
	const (
		allow want = iota
		denied
		unauthenticated
	)
	for _, tc := range []struct {
		p    auth.Principal
		r    auth.Role
		ns   string
		want want
	}{
		{web, auth.RoleRead, "users", allow},
		{web, auth.RoleWrite, "users", denied},
		{web, auth.RoleRead, "sessions", allow},
		{web, auth.RoleWrite, "sessions", allow},
		{web, auth.RoleRead, "public", denied},
		{web, auth.RoleAdmin, "", denied},
		{web, auth.RolePeer, "", denied},
		{webAsNod, auth.RolePeer, "", denied}, // a node certificate, but web has no peer grant
		{ops, auth.RoleAdmin, "", allow},
		{ops, auth.RoleRead, "users", denied}, // admin does not imply data access
		{ops, auth.RolePeer, "", denied},
		{node0, auth.RolePeer, "", allow},
		{node0, auth.RoleRead, "users", denied},
		{nodeTok, auth.RolePeer, "", denied}, // peer only through a node certificate
		{mallory, auth.RoleRead, "users", denied},
		{nobody, auth.RoleRead, "users", unauthenticated},
		{nobody, auth.RoleAdmin, "", unauthenticated},
	} {
		err := z.Authorize(tc.p, tc.r, tc.ns)
		var got want
		switch {
		case err == nil:
			got = allow
		case errors.Is(err, auth.ErrUnauthenticated):
			got = unauthenticated
		case errors.Is(err, auth.ErrPermissionDenied):
			got = denied
		default:
			t.Errorf("%v %v %q: unexpected error %v", tc.p, tc.r, tc.ns, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Authorize(%v, %v, %q) = %v, want outcome %d", tc.p, tc.r, tc.ns, err, tc.want)
		}
	}
}

func TestAuthorize_MessagesNamePrincipalRoleAndNamespace(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	for _, tc := range []struct {
		p    auth.Principal
		r    auth.Role
		ns   string
		want string
	}{
		{web, auth.RoleWrite, "users", `principal "web" (by its token) may not write namespace "users"`},
		{web, auth.RoleAdmin, "users", `principal "web" (by its token) lacks the admin role (the Admin service needs admin: true)`},
		{nodeTok, auth.RolePeer, "", `principal "ringcache-0" (by its token) lacks the peer role (the Peer service needs a node certificate and peer: true)`},
		{nobody, auth.RoleRead, "users", `anonymous caller may not read namespace "users": present a client certificate or a bearer token`},
	} {
		err := z.Authorize(tc.p, tc.r, tc.ns)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Authorize(%v, %v, %q) = %v, want %q", tc.p, tc.r, tc.ns, err, tc.want)
		}
		var d *auth.DeniedError
		if !errors.As(err, &d) || d.Principal != tc.p || d.Role != tc.r {
			t.Errorf("error %v is not a DeniedError for %v %v", err, tc.p, tc.r)
		}
	}
}

func TestAuthorize_AnonymousGrantIsEveryonesFloor(t *testing.T) {
	z := newAuthorizer(t, `
namespaces: {users: {}, public: {}}
auth:
  principals: {web: {namespaces: {users: [read]}}}
  anonymous: {namespaces: {public: [read]}}
`, nil)
	for _, p := range []auth.Principal{nobody, web, mallory} {
		if err := z.Authorize(p, auth.RoleRead, "public"); err != nil {
			t.Errorf("%v reading public: %v", p, err)
		}
		if err := z.Authorize(p, auth.RoleWrite, "public"); err == nil {
			t.Errorf("%v may write public", p)
		}
	}
	if err := z.Authorize(nobody, auth.RoleWrite, "public"); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("anonymous write with an anonymous grant elsewhere: %v, want ErrUnauthenticated", err)
	}
}

// Only an anonymous caller whose grant allows nothing must authenticate
// before anything (the Redis door's NOAUTH): an anonymous grant of any
// role, any principal, or no auth section lets the caller in.
func TestMustAuthenticate_OnlyAnonymousCallersWithNothingGranted(t *testing.T) {
	closed := newAuthorizer(t, `
namespaces: {users: {}}
auth:
  principals: {web: {namespaces: {users: [read]}}}
`, nil)
	if !closed.MustAuthenticate(nobody) {
		t.Error("an anonymous caller granted nothing need not authenticate")
	}
	for _, p := range []auth.Principal{web, mallory} {
		if closed.MustAuthenticate(p) {
			t.Errorf("%v, identified, must authenticate", p)
		}
	}
	for _, anon := range []string{"{namespaces: {users: [read]}}", "{namespaces: {\"*\": [write]}}"} {
		open := newAuthorizer(t, "namespaces: {users: {}}\nauth:\n  anonymous: "+anon+"\n", nil)
		if open.MustAuthenticate(nobody) {
			t.Errorf("anonymous: %s; an anonymous caller must still authenticate", anon)
		}
	}
	none, err := auth.New(nil, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if none.MustAuthenticate(nobody) {
		t.Error("without an auth section, an anonymous caller must authenticate")
	}
}

func TestAuthorize_StarIsEveryNamespace(t *testing.T) {
	z := newAuthorizer(t, `
namespaces: {users: {}, sessions: {}}
auth: {principals: {reader: {namespaces: {"*": [read], sessions: [write]}}}}
`, nil)
	p := auth.Principal{Name: "reader", Kind: auth.Token}
	for _, ns := range []string{"users", "sessions", "added-later"} {
		if err := z.Authorize(p, auth.RoleRead, ns); err != nil {
			t.Errorf("read %s: %v", ns, err)
		}
	}
	if err := z.Authorize(p, auth.RoleWrite, "sessions"); err != nil {
		t.Errorf("write sessions: %v", err)
	}
	if err := z.Authorize(p, auth.RoleWrite, "users"); err == nil {
		t.Error("read on * granted write on users")
	}
}

func TestAuthorize_MostSpecificGlobWins(t *testing.T) {
	z := newAuthorizer(t, `
namespaces: {users: {}}
auth:
  principals:
    "ringcache-*":       {peer: true}
    "ringcache-admin-*": {admin: true}
    "ringcache-ad?in-1": {namespaces: {users: [read]}}
    "ringcache-admin-2": {namespaces: {users: [write]}}
`, nil)
	cert := func(name string) auth.Principal {
		return auth.Principal{Name: name, Kind: auth.Certificate, Node: true}
	}
	for _, tc := range []struct {
		name string
		r    auth.Role
		ns   string
		ok   bool
	}{
		{"ringcache-3", auth.RolePeer, "", true},
		{"ringcache-admin-9", auth.RoleAdmin, "", true},
		{"ringcache-admin-9", auth.RolePeer, "", false}, // the longer glob wins alone
		{"ringcache-admin-1", auth.RoleRead, "users", true},
		{"ringcache-admin-1", auth.RoleAdmin, "", false},
		{"ringcache-admin-2", auth.RoleWrite, "users", true}, // exact beats every glob
		{"ringcache-admin-2", auth.RoleAdmin, "", false},
		{"other", auth.RolePeer, "", false},
	} {
		for range 2 { // resolved, then cached
			if err := z.Authorize(cert(tc.name), tc.r, tc.ns); (err == nil) != tc.ok {
				t.Errorf("Authorize(%s, %v, %q) = %v, want ok=%v", tc.name, tc.r, tc.ns, err, tc.ok)
			}
		}
	}
}

func TestAuthorize_NoAuthSectionAllowsEverything(t *testing.T) {
	z, err := auth.New(nil, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if z.Enabled() {
		t.Error("Enabled without an auth section")
	}
	for _, r := range []auth.Role{auth.RoleRead, auth.RoleWrite, auth.RoleAdmin, auth.RolePeer} {
		if err := z.Authorize(nobody, r, "users"); err != nil {
			t.Errorf("%v: %v", r, err)
		}
	}
	if ok, _ := z.Allow(nobody); !ok {
		t.Error("rate-limited without an auth section")
	}
}

func TestUpdate_SwapsThePolicyAndKeepsItOnError(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	if err := z.Authorize(web, auth.RoleWrite, "users"); err == nil {
		t.Fatal("web may write users before the update")
	}
	f := parse(t, issueExample)
	f.Auth.Principals["web"].Namespaces["users"] = []string{"read", "write"}
	if err := z.Update(f.Auth); err != nil {
		t.Fatal(err)
	}
	if err := z.Authorize(web, auth.RoleWrite, "users"); err != nil {
		t.Errorf("after the update: %v", err)
	}
	f.Auth.TokensFile = "/nonexistent/tokens"
	f.Auth.Principals["web"].Namespaces["users"] = nil
	if err := z.Update(f.Auth); err == nil {
		t.Fatal("Update with a missing tokens file succeeded")
	}
	if err := z.Authorize(web, auth.RoleWrite, "users"); err != nil {
		t.Errorf("a failed update changed the policy: %v", err)
	}
}

func TestRate_LimitedPrincipalDoesNotSlowOthers(t *testing.T) {
	clock := testclock.New()
	z := newAuthorizer(t, `
namespaces: {users: {}}
auth:
  principals:
    slow:    {rate: 10, burst: 5}
    steady:  {rate: 2}
    "node-*": {rate: 1}
    fast:    {}
  anonymous: {rate: 1}
`, clock)
	slow := auth.Principal{Name: "slow", Kind: auth.Token}
	for i := range 5 {
		if ok, _ := z.Allow(slow); !ok {
			t.Fatalf("op %d within the burst refused", i)
		}
	}
	ok, after := z.Allow(slow)
	if ok || after != 100*time.Millisecond {
		t.Errorf("past the burst: ok=%v retryAfter=%v, want refused for 100ms (one op at 10/s)", ok, after)
	}
	err := z.Limit(slow)
	var rl *auth.RateLimitedError
	if !errors.Is(err, auth.ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != 100*time.Millisecond {
		t.Errorf("Limit = %v, want a RateLimitedError of 100ms", err)
	}
	for i := range 1000 {
		if ok, _ := z.Allow(auth.Principal{Name: "fast", Kind: auth.Token}); !ok {
			t.Fatalf("unlimited principal refused at op %d", i)
		}
	}
	steady := auth.Principal{Name: "steady", Kind: auth.Token}
	if ok1, _ := z.Allow(steady); !ok1 {
		t.Error("steady (burst defaults to rate) refused its first op")
	}
	if ok2, _ := z.Allow(steady); !ok2 {
		t.Error("steady (burst defaults to rate = 2) refused its second op")
	}
	clock.Advance(100 * time.Millisecond)
	if ok, _ := z.Allow(slow); !ok {
		t.Error("slow refused after its retry delay")
	}

	// Each name a glob matches has its own bucket.
	n1, n2 := auth.Principal{Name: "node-1", Kind: auth.Certificate}, auth.Principal{Name: "node-2", Kind: auth.Certificate}
	if ok, _ := z.Allow(n1); !ok {
		t.Error("node-1 refused its first op")
	}
	if ok, _ := z.Allow(n2); !ok {
		t.Error("node-2 refused its first op: it shares node-1's bucket")
	}
	// Anonymous callers and names matching no entry share the anonymous bucket.
	if ok, _ := z.Allow(nobody); !ok {
		t.Error("anonymous refused its first op")
	}
	if ok, _ := z.Allow(mallory); ok {
		t.Error("mallory (no entry) has a bucket of its own; want the anonymous one, now empty")
	}
}

func TestAuthorize_AllocatesNothingWhenItAllows(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	node7 := auth.Principal{Name: "ringcache-7", Kind: auth.Certificate, Node: true}
	allocs := testing.AllocsPerRun(1000, func() {
		if z.Authorize(web, auth.RoleRead, "users") != nil || z.Authorize(node7, auth.RolePeer, "") != nil {
			panic("denied")
		}
		if ok, _ := z.Allow(web); !ok {
			panic("limited")
		}
	})
	if allocs != 0 {
		t.Errorf("Authorize+Allow allocate %v times per call, want 0", allocs)
	}
}

func TestAuthorizer_ConcurrentUseDuringUpdates(t *testing.T) {
	z := newAuthorizer(t, issueExample, nil)
	f := parse(t, issueExample)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Go(func() {
			p := auth.Principal{Name: fmt.Sprintf("ringcache-%d", i), Kind: auth.Certificate, Node: true}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := z.Authorize(p, auth.RolePeer, ""); err != nil {
					t.Errorf("peer %v refused: %v", p, err)
					return
				}
				if err := z.Authorize(web, auth.RoleRead, "users"); err != nil {
					t.Errorf("web refused: %v", err)
					return
				}
				z.Allow(web)
			}
		})
	}
	for range 50 {
		if err := z.Update(f.Auth); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func BenchmarkAuthorize(b *testing.B) {
	z := newAuthorizer(b, issueExample, nil)
	node := auth.Principal{Name: "ringcache-3", Kind: auth.Certificate, Node: true}
	b.Run("exact", func(b *testing.B) {
		for b.Loop() {
			_ = z.Authorize(web, auth.RoleRead, "users")
		}
	})
	b.Run("glob", func(b *testing.B) {
		for b.Loop() {
			_ = z.Authorize(node, auth.RolePeer, "")
		}
	})
	b.Run("allow", func(b *testing.B) {
		for b.Loop() {
			z.Allow(web)
		}
	})
	b.Run("identify-token", func(b *testing.B) {
		for b.Loop() {
			_, _ = z.Identify(auth.Credentials{Token: webToken})
		}
	})
}
