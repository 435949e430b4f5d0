package node

import "fmt"

// What a SIGHUP reloads on a running node (ringcached calls these). Each
// change takes effect for calls and handshakes that start after it;
// everything else in a node's Config needs a restart.

// ReloadAuth makes a the node's auth policy (nil: no auth section, which
// turns authorization off and is logged as a warning) and reads the tokens
// file now. The policy is swapped whole, so each operation sees one policy;
// rate limiters start full again. On error the current policy stays.
func (n *Node) ReloadAuth(a *AuthConfig) error {
	if err := n.sec.auth.Update(a.internal()); err != nil {
		return fmt.Errorf("node: auth: %w", err)
	}
	if err := n.sec.auth.ReloadTokens(); err != nil {
		return fmt.Errorf("node: auth: tokens file: %w", err)
	}
	return nil
}

// ReloadTLS reads the certificate, key and CA files now rather than at the
// first handshake a second after they change. On error (files that do not
// parse, or a certificate and key that do not match yet) the previous
// material stays. Without TLS it does nothing.
func (n *Node) ReloadTLS() error {
	if n.sec.tls == nil {
		return nil
	}
	if err := n.sec.tls.Reload(); err != nil {
		return fmt.Errorf("node: TLS: %w", err)
	}
	return nil
}

// ReloadRESPRedirect sets whether the RESP door redirects every
// connection (RESPConfig.RedirectAll, config resp.redirect) for the
// connections it accepts from now on; those open keep what they have.
// Without the door it does nothing.
func (n *Node) ReloadRESPRedirect(all bool) {
	if n.resp != nil {
		n.resp.server.SetRedirectAll(all)
	}
}

// ReopenAuditLog closes the audit log file and opens its path again, so
// that after logrotate renamed it records go to a new file. Without an
// audit log it does nothing.
func (n *Node) ReopenAuditLog() error {
	if n.sec.audit == nil {
		return nil
	}
	return n.sec.audit.Reopen()
}
