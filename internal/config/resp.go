package config

import "fmt"

// RESP configures the Redis protocol door (ringcached --resp-addr).
type RESP struct {
	// DefaultNamespace holds every Redis key that does not start with a
	// configured namespace and a colon; empty means "default", which must
	// then be a configured namespace when the door is open.
	DefaultNamespace string `yaml:"default_namespace"`
}

func (f *File) validateRESP() error {
	if ns := f.RESP.DefaultNamespace; ns != "" {
		if _, ok := f.Namespaces[ns]; !ok {
			return fmt.Errorf("%w: resp.default_namespace: %q is not a configured namespace (have %v)", ErrInvalid, ns, sortedKeys(f.Namespaces))
		}
	}
	return nil
}
