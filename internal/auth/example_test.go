package auth_test

import (
	"errors"
	"fmt"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/config"
)

func Example() {
	f, err := config.Parse([]byte(`
namespaces: {users: {}}
auth:
  principals:
    web: {namespaces: {users: [read]}, rate: 2, burst: 1}
`), "/data")
	if err != nil {
		fmt.Println(err)
		return
	}
	z, err := auth.New(f.Auth, auth.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Once per connection or call: who is it? (A token or a verified
	// client certificate named "web" would both give this principal.)
	web := auth.Principal{Name: "web", Kind: auth.Certificate}

	// Per operation: may it, and is it within its rate?
	fmt.Println(z.Authorize(web, auth.RoleRead, "users"))
	err = z.Authorize(web, auth.RoleWrite, "users")
	fmt.Println(errors.Is(err, auth.ErrPermissionDenied), err)
	err = z.Authorize(auth.Principal{}, auth.RoleRead, "users")
	fmt.Println(errors.Is(err, auth.ErrUnauthenticated), err)
	fmt.Println(z.Limit(web))
	fmt.Println(errors.Is(z.Limit(web), auth.ErrRateLimited))
	// Output:
	// <nil>
	// true principal "web" may not write namespace "users"
	// true anonymous caller may not read namespace "users": present a client certificate or a bearer token
	// <nil>
	// true
}
