package config_test

import (
	"errors"
	"fmt"

	"github.com/ringcache/ringcache/internal/config"
)

func ExampleParse() {
	doc := `
namespaces:
  users:
    read: through
    ttl: 30m
    negative_ttl: 30s
`
	f, err := config.Parse([]byte(doc), "/var/lib/ringcache")
	if err != nil {
		fmt.Println(err)
		return
	}
	ns := f.Namespaces["users"]
	fmt.Println(ns.Read, ns.Write, ns.TTL.Std(), ns.NegativeTTL.Std())
	fmt.Println(ns.Backend, f.Backends[ns.Backend].Path)

	_, err = config.Parse([]byte("namespaces:\n  users: {ttl_jitter: 1.5}\n"), "/var/lib/ringcache")
	fmt.Println(errors.Is(err, config.ErrInvalid), err)
	// Output:
	// through aside 30m0s 30s
	// local /var/lib/ringcache/app.db
	// true invalid config: namespaces.users.ttl_jitter: must be in [0, 1), got 1.5
}
