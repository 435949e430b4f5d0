package tlsconf

import (
	"context"
	"errors"
	"net"

	"google.golang.org/grpc/credentials"
)

// ClientCredentials returns gRPC transport credentials that take a fresh
// ClientConfig for every connection, so that a client or a node's peer pool
// follows a rotation of the CA as well as of its own certificate. The
// server's name is the host of the address dialled, as with
// credentials.NewTLS.
func (s *Source) ClientCredentials() credentials.TransportCredentials {
	return &clientCreds{s: s, info: credentials.NewTLS(s.ClientConfig()).Info()}
}

type clientCreds struct {
	s            *Source
	info         credentials.ProtocolInfo
	overrideName string
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	cfg := c.s.ClientConfig()
	cfg.ServerName = c.overrideName
	return credentials.NewTLS(cfg).ClientHandshake(ctx, authority, conn)
}

func (c *clientCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconf: client credentials cannot serve; use credentials.NewTLS(ServerConfig(...))")
}

func (c *clientCreds) Info() credentials.ProtocolInfo { return c.info }

func (c *clientCreds) Clone() credentials.TransportCredentials {
	cp := *c
	return &cp
}

// OverrideServerName implements the deprecated method of
// credentials.TransportCredentials.
func (c *clientCreds) OverrideServerName(name string) error {
	c.overrideName = name
	c.info.ServerName = name
	return nil
}
