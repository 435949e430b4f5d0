package node

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/journal"
	"github.com/ringcache/ringcache/internal/seal"
	"github.com/ringcache/ringcache/internal/service"
	"github.com/ringcache/ringcache/internal/tlsconf"
)

// insecureWarnEvery is how often a node serving plaintext off loopback
// says so again.
const insecureWarnEvery = time.Hour

// security is the node's TLS material, authorizer, audit log and guard.
type security struct {
	tls    *tlsconf.Source // nil without TLS
	auth   *auth.Authorizer
	audit  *audit.Log // nil without an audit log
	guard  *service.Guard
	sealer *seal.Sealer // nil without seal keys
}

// openSecurity loads the TLS material, the auth policy and the audit log.
func (n *Node) openSecurity() error {
	cfg := n.cfg
	var err error
	if t := cfg.TLS; t != nil {
		n.sec.tls, err = tlsconf.Load(tlsconf.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.ClientCAFile}, tlsconf.Options{Logger: n.log, Now: n.now})
		if err != nil {
			return fmt.Errorf("node: TLS: %w", err)
		}
	}
	if n.sec.auth, err = auth.New(cfg.Auth.internal(), auth.Options{Logger: n.log, Now: n.now}); err != nil {
		return fmt.Errorf("node: auth: %w", err)
	}
	if a := cfg.Audit; a != nil {
		if n.sec.audit, err = audit.Open(a.Path, audit.Options{Key: a.Key, Logger: n.log, Now: n.now}); err != nil {
			return fmt.Errorf("node: audit log: %w", err)
		}
		n.closers = append(n.closers, func() {
			if err := n.sec.audit.Close(); err != nil {
				n.log.Error("closing the audit log", "err", err)
			}
		})
	}
	if len(cfg.SealKeys) > 0 {
		if n.sec.sealer, err = seal.New(cfg.SealKeys); err != nil {
			return fmt.Errorf("node: seal keys: %w", err)
		}
	}
	n.sec.guard = &service.Guard{Auth: n.sec.auth, Audit: n.sec.audit, MaxCalls: max(0, cfg.MaxCalls), MaxStreams: max(0, cfg.MaxStreams)}
	return nil
}

// openSealed returns the flusher's view of the journal's values: sealed
// ones (of sensitive namespaces) opened; nil when no namespace is
// sensitive.
func (n *Node) openSealed() func(journal.Record) ([]byte, error) {
	sensitive := map[string]bool{}
	for _, s := range n.cfg.Namespaces {
		if s.Sensitive {
			sensitive[s.Policy.Name] = true
		}
	}
	if len(sensitive) == 0 || n.sec.sealer == nil {
		return nil
	}
	return func(r journal.Record) ([]byte, error) {
		if !sensitive[r.Namespace] {
			return r.Value, nil
		}
		return n.sec.sealer.Open(seal.AAD(r.Namespace, r.Key), r.Value)
	}
}

// ReloadSealKeys replaces the keys that seal sensitive values: the first
// seals from now on, all open. Keep an old key until no record sealed with
// it is pending (the journal drains within its flush interval).
func (n *Node) ReloadSealKeys(keys [][]byte) error {
	if n.sec.sealer == nil {
		return errors.New("node: started without seal keys; add --seal-key-file and restart")
	}
	return n.sec.sealer.Reload(keys)
}

// serverSecurity returns the gRPC server's credentials and interceptors.
func (n *Node) serverSecurity() ([]grpc.ServerOption, error) {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(recoverUnary(n.log), n.sec.guard.Unary),
		grpc.ChainStreamInterceptor(n.sec.guard.Stream),
	}
	if n.sec.tls == nil {
		return opts, nil
	}
	tc, err := n.sec.tls.ServerConfig(n.cfg.TLS.RequireClientCert)
	if err != nil {
		return nil, fmt.Errorf("node: TLS: %w", err)
	}
	return append(opts, grpc.Creds(credentials.NewTLS(tc))), nil
}

// peerCredentials returns the credentials of the node's calls to peers:
// TLS presenting the node certificate, or nil for plaintext.
func (n *Node) peerCredentials() credentials.TransportCredentials {
	if n.sec.tls == nil {
		return nil
	}
	return n.sec.tls.ClientCredentials()
}

// warnInsecure says, at start and every hour, that a node serves in the
// clear off loopback.
func (n *Node) warnInsecure() {
	if !n.cfg.Insecure || (loopback(n.cfg.GRPCAddr) || n.cfg.TLS != nil) && (loopback(n.cfg.GossipAddr) || len(n.cfg.GossipKeys) > 0) {
		return
	}
	warn := func() {
		n.log.Warn("INSECURE: serving without TLS or gossip encryption off loopback (--insecure): anyone who reaches the node can read and write every namespace",
			"grpc", n.cfg.GRPCAddr, "tls", n.cfg.TLS != nil, "gossip", n.cfg.GossipAddr, "gossip_encrypted", len(n.cfg.GossipKeys) > 0)
	}
	warn()
	n.wg.Go(func() {
		t := time.NewTicker(insecureWarnEvery)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
				warn()
			}
		}
	})
}

// internal returns a as the auth package takes it; nil stays nil (no
// authorization).
func (a *AuthConfig) internal() *config.Auth {
	if a == nil {
		return nil
	}
	out := &config.Auth{TokensFile: a.TokensFile, Anonymous: a.Anonymous.internal(), Principals: map[string]config.Grant{}}
	for name, g := range a.Principals {
		out.Principals[name] = g.internal()
	}
	return out
}

func (g Grant) internal() config.Grant {
	return config.Grant{Namespaces: g.Namespaces, Admin: g.Admin, Peer: g.Peer, Rate: g.Rate, Burst: g.Burst}
}
