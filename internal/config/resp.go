package config

import "fmt"

// RESP configures the Redis protocol door (ringcached --resp-addr).
type RESP struct {
	// DefaultNamespace holds every Redis key that does not start with a
	// configured namespace and a colon; empty means "default", which must
	// then be a configured namespace when the door is open.
	DefaultNamespace string `yaml:"default_namespace"`
	// Redirect says which connections get MOVED for a key another node
	// owns: RedirectAuto (the default) those that sent a cluster command,
	// the others having such keys forwarded; RedirectAlways every one, as
	// Redis Cluster does.
	Redirect string `yaml:"redirect"`
}

// The values of resp.redirect.
const (
	RedirectAuto   = "auto"
	RedirectAlways = "always"
)

func (f *File) validateRESP() error {
	switch f.RESP.Redirect {
	case "", RedirectAuto, RedirectAlways:
	default:
		return fmt.Errorf("%w: resp.redirect: %q is neither %q (MOVED for cluster clients, forwarding for the others) nor %q (MOVED on every connection)", ErrInvalid, f.RESP.Redirect, RedirectAuto, RedirectAlways)
	}
	if ns := f.RESP.DefaultNamespace; ns != "" {
		if _, ok := f.Namespaces[ns]; !ok {
			return fmt.Errorf("%w: resp.default_namespace: %q is not a configured namespace (have %v)", ErrInvalid, ns, sortedKeys(f.Namespaces))
		}
	}
	return nil
}
