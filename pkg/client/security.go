package client

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/internal/tlsconf"
)

// TLSOptions dials the nodes over TLS 1.3. The files are re-read when they
// change, so a rotated client certificate or CA is used on new connections
// without a restart.
type TLSOptions struct {
	// CAFile verifies the nodes' certificates; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are a client certificate (ringcachectl certs
	// client makes one) that identifies the caller; both or neither.
	CertFile, KeyFile string
}

// dialSecurity returns the dial options of Options.TLS and Options.Token.
func (o *Options) dialSecurity() ([]grpc.DialOption, error) {
	var opts []grpc.DialOption
	if t := o.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return nil, errors.New("ringcache client: TLS needs both a certificate and a key file, or neither")
		}
		src, err := tlsconf.Load(tlsconf.Files{Cert: t.CertFile, Key: t.KeyFile, CA: t.CAFile}, tlsconf.Options{Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("ringcache client: TLS: %w", err)
		}
		opts = append(opts, grpc.WithTransportCredentials(src.ClientCredentials()))
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: o.Token, tls: o.TLS != nil}))
	}
	return opts, nil
}

// noteAuthOff logs, once per client, that the node at addr answered s
// saying it checks no token (reason.AuthOffHeader): its config has no auth
// section, so Options.Token protects nothing there. s must have answered.
func (c *Client) noteAuthOff(s grpc.ClientStream, addr string) {
	if md, err := s.Header(); err == nil && len(md.Get(reason.AuthOffHeader)) > 0 {
		c.authOff.Do(func() {
			c.log.Warn("ringcache client: the node checks no token (its config has no auth section): Options.Token protects nothing there", "node", addr)
		})
	}
}

// bearer sends a token as "authorization: Bearer <token>", the gRPC
// convention, over TLS only unless the connection is plaintext by choice
// (a token over plaintext is readable by anyone on the path).
type bearer struct {
	token string
	tls   bool
}

var _ credentials.PerRPCCredentials = bearer{}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.tls }
