// Package tlsconf builds the TLS configurations of a node, its peers and its
// clients from PEM files that may be replaced while the process runs.
//
// The guarantee: a rotation of the certificate, its key or the CA bundle
// takes effect on the next handshake after the files change (looked at at
// most once a second, see internal/filewatch), with no restart, and no
// handshake ever uses half-rotated material: until the new certificate and
// key parse and match, and the new CA bundle parses, the previous material
// stays in use. Connections already established keep the material they were
// made with. Every configuration requires TLS 1.3.
//
// One Source serves both sides of a node: ServerConfig for its listener
// (clients and peers connect to it) and ClientConfig for dialling peers
// (presenting the node certificate and verifying the peer's against the CA).
// The ctl and the Go client use a Source with only a CA, or a CA and a
// client certificate, and its ClientConfig.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ringcache/ringcache/internal/filewatch"
)

// Errors returned by Load and ServerConfig.
var (
	// ErrNoCertificate: a server configuration needs a certificate and key.
	ErrNoCertificate = errors.New("no certificate and key configured")
	// ErrNoClientCA: requiring client certificates needs a CA to verify them.
	ErrNoClientCA = errors.New("no client CA configured")
	// ErrBadFiles: the files named do not hold usable PEM material.
	ErrBadFiles = errors.New("bad TLS files")
)

// Files names the PEM files of a Source.
type Files struct {
	// Cert and Key are the certificate (chain, leaf first) and its private
	// key. Both or neither: a server needs them; a client presents them when
	// the server asks for a certificate.
	Cert, Key string
	// CA is a bundle of CA certificates. On a server it verifies client
	// certificates (without it, none is asked for); on a client it verifies
	// the server (without it, the system roots do). During a CA rotation it
	// holds the old and the new CA.
	CA string
}

// Options tunes a Source. The zero value is usable.
type Options struct {
	// Interval is the least time between two looks at the files; zero means
	// filewatch.DefaultInterval (1s).
	Interval time.Duration
	// Logger receives a line per reload and per failed reload; nil discards.
	Logger *slog.Logger
	// Now is the clock of reloads and of certificate verification; nil
	// means time.Now.
	Now func() time.Time
}

// Source holds the current TLS material of Files. It is safe for concurrent
// use; the configurations it returns read the current material at each
// handshake.
type Source struct {
	files Files
	now   func() time.Time
	v     *filewatch.Value[*material]
}

type material struct {
	cert *tls.Certificate // nil without Files.Cert
	pool *x509.CertPool   // nil without Files.CA
}

// Load reads the files once and returns a Source that re-reads them when
// they change. It fails when a file is missing or does not parse, or when
// the certificate and key do not match.
func Load(f Files, o Options) (*Source, error) {
	if (f.Cert == "") != (f.Key == "") {
		return nil, fmt.Errorf("%w: a certificate needs its key and a key its certificate (got cert %q, key %q)", ErrBadFiles, f.Cert, f.Key)
	}
	var paths []string
	for _, p := range []string{f.Cert, f.Key, f.CA} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no files given", ErrBadFiles)
	}
	s := &Source{files: f, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	v, err := filewatch.New(paths, func() (*material, error) { return readMaterial(f) }, filewatch.Options{
		Interval: o.Interval, Now: o.Now, Logger: o.Logger, Name: "tls material",
	})
	if err != nil {
		return nil, err
	}
	s.v = v
	return s, nil
}

func readMaterial(f Files) (*material, error) {
	m := &material{}
	if f.Cert != "" {
		certPEM, err := os.ReadFile(f.Cert)
		if err != nil {
			return nil, err
		}
		keyPEM, err := os.ReadFile(f.Key)
		if err != nil {
			return nil, err
		}
		kp, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%w: %s and %s: %v", ErrBadFiles, f.Cert, f.Key, err)
		}
		m.cert = &kp
	}
	if f.CA != "" {
		caPEM, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, err
		}
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrBadFiles, f.CA)
		}
	}
	return m, nil
}

// Certificate returns the leaf of the current certificate, nil without one.
func (s *Source) Certificate() *x509.Certificate {
	if m := s.v.Get(); m.cert != nil {
		return m.cert.Leaf
	}
	return nil
}

// Reload looks at the files now (a SIGHUP handler) and returns the error of
// reloading them, nil when they did not change or reloaded.
func (s *Source) Reload() error { return s.v.Reload() }

// Stats counts reloads and failed reloads.
func (s *Source) Stats() filewatch.Stats { return s.v.Stats() }

// ServerConfig returns the configuration of a listener. With a CA, a client
// certificate signed by it is asked for and verified
// (VerifyClientCertIfGiven), or required with requireClientCert
// (RequireAndVerifyClientCert); without one, none is asked for. Session
// tickets are off so that every connection is verified against the current
// CA. NextProtos set on the returned configuration before use are offered
// (gRPC adds h2 itself).
func (s *Source) ServerConfig(requireClientCert bool) (*tls.Config, error) {
	if s.files.Cert == "" {
		return nil, ErrNoCertificate
	}
	auth := tls.NoClientCert
	switch {
	case s.files.CA != "" && requireClientCert:
		auth = tls.RequireAndVerifyClientCert
	case s.files.CA != "":
		auth = tls.VerifyClientCertIfGiven
	case requireClientCert:
		return nil, fmt.Errorf("%w: requiring client certificates needs a CA to verify them", ErrNoClientCA)
	}
	outer := &tls.Config{MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true}
	outer.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		m := s.v.Get()
		return &tls.Config{
			MinVersion:             tls.VersionTLS13,
			Certificates:           []tls.Certificate{*m.cert},
			ClientCAs:              m.pool,
			ClientAuth:             auth,
			NextProtos:             outer.NextProtos,
			SessionTicketsDisabled: true,
			Time:                   s.now,
		}, nil
	}
	return outer, nil
}

// ClientConfig returns the configuration of a dialler: it presents the
// current certificate, if any, when the server asks for one, and verifies
// the server's certificate and the name dialled (a DNS name or an IP
// address; set ServerName on the returned configuration to verify another)
// against the CA bundle as it is now, or against the system roots without a
// CA file. To follow a CA rotation, call ClientConfig for each new
// connection; ClientCredentials does so for gRPC.
func (s *Source) ClientConfig() *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, Time: s.now, RootCAs: s.v.Get().pool}
	if s.files.Cert != "" {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.v.Get().cert, nil
		}
	}
	return c
}
