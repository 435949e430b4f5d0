package daemon

import (
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/gossipkey"
	"github.com/ringcache/ringcache/pkg/node"
)

// SecurityFlags are ringcached's TLS, exposure and audit settings; who may
// do what is the auth section of ringcache.yaml.
type SecurityFlags struct {
	TLSCert, TLSKey, TLSClientCA string
	TLSRequireClientCert         bool
	// Insecure allows plaintext gRPC and unencrypted gossip off loopback.
	Insecure bool
	// AuditLog is the audit log's path; empty: none.
	AuditLog string
	// SealKeyFile holds the keys that seal sensitive namespaces' values in
	// the journal; empty: none.
	SealKeyFile string
}

func (s *SecurityFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&s.TLSCert, "tls-cert", "", "the node's TLS certificate (PEM; ringcachectl certs node makes one); serves gRPC over TLS 1.3, and peers are dialled with it; re-read when it changes, and on SIGHUP")
	fl.StringVar(&s.TLSKey, "tls-key", "", "the key of --tls-cert (PEM)")
	fl.StringVar(&s.TLSClientCA, "tls-client-ca", "", "CA that signs client and peer certificates (PEM); a verified client certificate identifies its caller")
	fl.BoolVar(&s.TLSRequireClientCert, "tls-require-client-cert", false, "refuse connections without a client certificate signed by --tls-client-ca (strict mutual TLS)")
	fl.BoolVar(&s.Insecure, "insecure", false, "allow plaintext gRPC (no --tls-cert) and unencrypted gossip (no --gossip-key-file) on an address other than loopback; anyone who reaches the node could then read and write every namespace")
	fl.StringVar(&s.SealKeyFile, "seal-key-file", "", "keys (one base64 32-byte key per line, the first sealing) that encrypt the values of namespaces marked sensitive: true in the write-behind journal; SIGHUP re-reads it")
	fl.StringVar(&s.AuditLog, "audit-log", "", "append an audit log (JSON lines) to this file: every Admin call, every denied call, and every access to namespaces marked audit: true; keys appear only as keyed hashes; SIGHUP reopens it (after logrotate)")
}

// apply sets the node's security settings from the flags and the config
// file; dataDir holds the audit key when the config names no key file.
func (s SecurityFlags) apply(cfg *node.Config, file *config.File, dataDir string, log *slog.Logger) error {
	if s.TLSCert != "" || s.TLSKey != "" || s.TLSClientCA != "" || s.TLSRequireClientCert {
		cfg.TLS = &node.TLSConfig{CertFile: s.TLSCert, KeyFile: s.TLSKey, ClientCAFile: s.TLSClientCA, RequireClientCert: s.TLSRequireClientCert}
	}
	cfg.Insecure = s.Insecure
	if s.SealKeyFile != "" {
		keys, err := gossipkey.Read(s.SealKeyFile)
		if err != nil {
			return fmt.Errorf("--seal-key-file: %w", err)
		}
		cfg.SealKeys = keys
	}
	cfg.Auth = authConfig(file.Auth)
	if s.AuditLog != "" {
		keyFile := ""
		if file.Auth != nil {
			keyFile = file.Auth.AuditKeyFile
		}
		key, err := audit.LoadKey(keyFile, dataDir)
		if err != nil {
			return err
		}
		cfg.Audit = &node.AuditConfig{Path: s.AuditLog, Key: key}
	}
	if cfg.Auth == nil && (cfg.TLS != nil || s.Insecure) {
		log.Warn("no auth section in the config: every caller that reaches the node may read and write every namespace and call the Admin and Peer services")
	}
	return nil
}

// authConfig is the config file's auth section as the node takes it.
func authConfig(a *config.Auth) *node.AuthConfig {
	if a == nil {
		return nil
	}
	out := &node.AuthConfig{TokensFile: a.TokensFile, Anonymous: grant(a.Anonymous), Principals: map[string]node.Grant{}}
	for name, g := range a.Principals {
		out.Principals[name] = grant(g)
	}
	return out
}

func grant(g config.Grant) node.Grant {
	return node.Grant{Namespaces: g.Namespaces, Admin: g.Admin, Peer: g.Peer, Rate: g.Rate, Burst: g.Burst}
}
