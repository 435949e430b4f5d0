package config

import (
	"fmt"
	"math"
	"path"

	"go.yaml.in/yaml/v3"
)

// Namespace roles of a Grant, and the namespace name that stands for all.
const (
	RoleRead  = "read"
	RoleWrite = "write"
	// AllNamespaces as a namespace name in a Grant grants its roles in every
	// namespace, including ones configured later.
	AllNamespaces = "*"
)

// Auth is the auth section: who may call a node and do what. When the file
// has no auth section (File.Auth is nil), every caller may do everything, as
// before authentication existed; an auth section, even an empty one, turns
// authorization on, and then a caller may do only what a Grant allows.
type Auth struct {
	// TokensFile lists bearer tokens, a line "principal sha256hex" each
	// (internal/auth). Empty: no token is accepted.
	TokensFile string `yaml:"tokens_file"`
	// AuditKeyFile holds the key of the audit log's keyed hashes; give every
	// node the same file so hashes of one key match across the cluster.
	// Empty: each node makes its own key in its data directory.
	AuditKeyFile string `yaml:"audit_key_file"`
	// Principals grants roles to callers by name: the name of a bearer
	// token's principal, or of a client certificate (its URI SAN, else its
	// common name). A name may be a glob (path.Match, e.g. "ringcache-*");
	// a caller matching no exact name gets the most specific matching glob:
	// the longest, ties broken by the lesser name.
	Principals map[string]Grant `yaml:"principals"`
	// Anonymous is what a caller without credentials may do; every
	// authenticated caller may do this too. Default: nothing.
	Anonymous Grant `yaml:"anonymous"`
}

// Grant is what a principal may do.
type Grant struct {
	// Namespaces maps a namespace name, or AllNamespaces, to its roles:
	// read (Get, GetMany, Lease, WatchInvalidations), write (Set, Delete).
	Namespaces map[string][]string `yaml:"namespaces"`
	// Admin allows the Admin service: members, ring, stats, journal retry,
	// drop and flush, gossip keys.
	Admin bool `yaml:"admin"`
	// Peer allows the Peer service, and only to a caller identified by a
	// node certificate, never by a token.
	Peer bool `yaml:"peer"`
	// Rate limits the principal to this many operations per second (each
	// pipelined operation counts as one); 0 is unlimited. A glob's rate
	// applies to each name it matches.
	Rate float64 `yaml:"rate"`
	// Burst is how many operations may go at once above Rate; default Rate
	// rounded up, at least 1.
	Burst int `yaml:"burst"`
}

func (f *File) validateAuth() error {
	a := f.Auth
	if a == nil {
		return nil
	}
	if err := f.validateGrant("auth.anonymous", a.Anonymous); err != nil {
		return err
	}
	if a.Anonymous.Admin || a.Anonymous.Peer {
		return fmt.Errorf("%w: auth.anonymous: admin and peer need an authenticated caller; grant them to a principal", ErrInvalid)
	}
	for _, name := range sortedKeys(a.Principals) {
		if _, err := path.Match(name, ""); name == "" || err != nil {
			return fmt.Errorf("%w: auth.principals: %q is not a principal name or glob (path.Match syntax: *, ?, [a-z])", ErrInvalid, name)
		}
		if err := f.validateGrant("auth.principals."+name, a.Principals[name]); err != nil {
			return err
		}
	}
	return nil
}

func (f *File) validateGrant(field string, g Grant) error {
	bad := func(sub, format string, args ...any) error {
		return fmt.Errorf("%w: %s%s: %s", ErrInvalid, field, sub, fmt.Sprintf(format, args...))
	}
	var unknown []string
	for _, ns := range sortedKeys(g.Namespaces) {
		if _, ok := f.Namespaces[ns]; !ok && ns != AllNamespaces {
			unknown = append(unknown, ns)
			continue
		}
		for _, role := range g.Namespaces[ns] {
			if role != RoleRead && role != RoleWrite {
				return bad(".namespaces."+ns, "%q is not a namespace role (use read or write; admin: true and peer: true are set on the principal)", role)
			}
		}
	}
	if len(unknown) > 0 {
		return bad(".namespaces", "unknown namespaces %q (configured: %v; %q means every namespace)", unknown, sortedKeys(f.Namespaces), AllNamespaces)
	}
	if g.Rate < 0 || math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0) {
		return bad(".rate", "must be a non-negative number of operations per second, got %g", g.Rate)
	}
	if g.Burst < 0 {
		return bad(".burst", "must not be negative, got %d", g.Burst)
	}
	if g.Burst > 0 && g.Rate == 0 {
		return bad(".burst", "needs a rate")
	}
	return nil
}

// hasKey reports whether the document's top-level mapping has key.
func hasKey(doc []byte, key string) bool {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return false
	}
	m := root.Content[0].Content
	for i := 0; i+1 < len(m); i += 2 {
		if m[i].Value == key {
			return true
		}
	}
	return false
}
