// Package certs creates the certificates of a ringcache cluster with
// crypto/x509, so that securing a cluster needs no openssl: a CA, node
// certificates and client certificates, each an ECDSA P-256 key pair.
//
// A node certificate carries the extended key usages serverAuth AND
// clientAuth: a node serves with it and dials its peers with it, and that
// pair of usages is what identifies a caller as a node (internal/auth). Its
// subject alternative names are exactly the hosts given, the names and
// addresses peers and clients dial. A client certificate carries clientAuth
// only; its common name is the principal the node's auth config names.
// Keys are written with mode 0600, certificates 0644, each file atomically.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Default validities.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 365 * 24 * time.Hour
	// DefaultCACommonName is the subject of a CA made by NewCA with no name.
	DefaultCACommonName = "ringcache CA"
	// backdate covers clocks of the cluster that run behind the issuer's.
	backdate = time.Hour
)

// Errors, wrapped with the offending name or path.
var (
	// ErrExists is returned by WritePair when a file is already there and
	// overwriting was not asked for.
	ErrExists = errors.New("file exists")
	// ErrInvalidName is returned for a node name, principal or host that
	// cannot go into a certificate or a file name.
	ErrInvalidName = errors.New("invalid name")
	// ErrNotCA is returned by LoadCA for a certificate that cannot sign.
	ErrNotCA = errors.New("not a CA certificate")
)

// CA signs node and client certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Pair is a signed certificate and its private key, PEM encoded.
type Pair struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte // PKCS#8
}

// NewCA creates a self-signed CA valid for validity (DefaultCAValidity when
// zero), named commonName (DefaultCACommonName when empty).
func NewCA(commonName string, validity time.Duration) (*CA, Pair, error) {
	if commonName == "" {
		commonName = DefaultCACommonName
	}
	if validity <= 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, Pair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"ringcache"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	p, err := sign(tmpl, tmpl, key, key)
	if err != nil {
		return nil, Pair{}, err
	}
	return &CA{Cert: p.Cert, Key: key}, p, nil
}

// LoadCA reads a CA certificate and its key (PEM; PKCS#8, SEC 1 or PKCS#1)
// and checks that they match and that the certificate may sign.
func LoadCA(certFile, keyFile string) (*CA, error) {
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading CA %s and %s: %w", certFile, keyFile, err)
	}
	if !kp.Leaf.IsCA || kp.Leaf.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: %w (create one with: ringcachectl certs ca)", certFile, ErrNotCA)
	}
	signer, ok := kp.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key of type %T cannot sign", keyFile, kp.PrivateKey)
	}
	return &CA{Cert: kp.Leaf, Key: signer}, nil
}

// Node issues a node certificate: common name name, serverAuth and
// clientAuth, subject alternative names hosts (IP addresses and DNS names,
// "*.example" wildcards allowed). At least one host is required: peers and
// clients verify the address they dial against these names.
func (ca *CA) Node(name string, hosts []string, validity time.Duration) (Pair, error) {
	if err := CheckName(name); err != nil {
		return Pair{}, fmt.Errorf("node name: %w", err)
	}
	if len(hosts) == 0 {
		return Pair{}, fmt.Errorf("%w: a node certificate needs at least one host (the IP address or DNS name peers and clients dial)", ErrInvalidName)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"ringcache"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case validDNSName(h):
			tmpl.DNSNames = append(tmpl.DNSNames, strings.ToLower(h))
		default:
			return Pair{}, fmt.Errorf("%w: host %q is neither an IP address nor a DNS name (give a host without a port, e.g. 10.0.0.5 or ringcache-0.ringcache)", ErrInvalidName, h)
		}
	}
	return ca.issue(tmpl, validity)
}

// Client issues a client certificate for principal: common name principal,
// clientAuth only.
func (ca *CA) Client(principal string, validity time.Duration) (Pair, error) {
	if err := CheckName(principal); err != nil {
		return Pair{}, fmt.Errorf("principal: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: principal},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issue(tmpl, validity)
}

func (ca *CA) issue(tmpl *x509.Certificate, validity time.Duration) (Pair, error) {
	if validity <= 0 {
		validity = DefaultLeafValidity
	}
	now := time.Now()
	tmpl.NotBefore = now.Add(-backdate)
	tmpl.NotAfter = now.Add(validity)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // a leaf cannot outlive its CA
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, err
	}
	return sign(tmpl, ca.Cert, key, ca.Key)
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (Pair, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Pair{}, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return Pair{}, fmt.Errorf("signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Pair{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$`)

// CheckName reports whether name may be a node name or principal of a
// certificate: 1 to 128 letters, digits, '.', '_', '@' or '-', starting with
// a letter or digit, so that it is also a safe file name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q must be 1 to 128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func validDNSName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for i, label := range strings.Split(h, ".") {
		if i == 0 && label == "*" && strings.Contains(h, ".") {
			continue
		}
		if !labelRE.MatchString(label) {
			return false
		}
	}
	return true
}

// WritePair writes p's certificate to certPath (mode 0644) and its key to
// keyPath (mode 0600), creating their directory (0700) if needed. Unless
// overwrite, it writes nothing when either file exists and returns an error
// wrapping ErrExists. Each file is written to a temporary name and renamed,
// so a node that reloads them never reads half a file.
func WritePair(certPath, keyPath string, p Pair, overwrite bool) error {
	if !overwrite {
		for _, f := range []string{certPath, keyPath} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("%s: %w (pass --overwrite to replace it)", f, ErrExists)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	if err := writeFile(keyPath, p.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeFile(certPath, p.CertPEM, 0o644)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
