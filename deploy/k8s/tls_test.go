package k8s

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/tlsconf"
)

// The TLS overlay's contract with the Secrets it mounts.
const (
	tlsSecret  = "ringcache-tls"  // tls.crt, tls.key, ca.crt: cert-manager's layout
	authSecret = "ringcache-auth" // tokens, audit.key
	nodeCN     = "ringcache"      // the shared node certificate's principal
)

// tlsFlags are the flags the overlay adds, and the Secret keys they name.
var tlsFlags = map[string]string{"tls-cert": "tls.crt", "tls-key": "tls.key", "tls-client-ca": "ca.crt"}

// TestTLSOverlay renders deploy/k8s-tls and checks that it turns TLS and
// authorization on with the files it mounts, and changes nothing else.
func TestTLSOverlay(t *testing.T) {
	m := renderDir(t, "deploy/k8s-tls")
	sts, c := ringcacheNode(t, m)
	pod := &sts.Spec.Template.Spec
	flag := parseFlags(t, c)

	t.Run("flags", func(t *testing.T) {
		if argGiven(c, "insecure") {
			t.Errorf("the overlay keeps the base's --insecure: should a patch ever lose the TLS flags, the node would serve plaintext on the pod network instead of refusing to start")
		}
		for f := range tlsFlags {
			if p := flag(f); !filepath.IsAbs(p) {
				t.Errorf("--%s=%q is not an absolute path", f, p)
			}
		}
		if argGiven(c, "pprof") && flag("pprof") != "false" {
			t.Errorf("--pprof on the plain admin port would show profiles to anyone on the pod network")
		}
		if !argGiven(c, "audit-log") {
			t.Errorf("no --audit-log: admin and denied calls would go unrecorded")
		}
	})

	t.Run("secrets mounted read-only", func(t *testing.T) {
		for f, wantKey := range tlsFlags {
			name, key := mountedObject(t, pod, c, flag(f), secretSource)
			if name != tlsSecret || key != wantKey {
				t.Errorf("--%s is key %q of Secret %q, want %q of %q (cert-manager's layout)", f, key, name, wantKey, tlsSecret)
			}
		}
		file := mountedConfig(t, m)
		if file.Auth == nil {
			t.Fatalf("the config has no auth: section")
		}
		for what, p := range map[string]string{"tokens": file.Auth.TokensFile, "audit.key": file.Auth.AuditKeyFile} {
			if p == "" {
				t.Errorf("the auth: section names no %s file", what)
				continue
			}
			if name, key := mountedObject(t, pod, c, p, secretSource); name != authSecret || key != what {
				t.Errorf("%s is key %q of Secret %q, want %q of %q", p, key, name, what, authSecret)
			}
		}
		for _, s := range []string{tlsSecret, authSecret} {
			if _, ok := m.secrets[s]; ok {
				t.Errorf("the overlay renders Secret %s: private keys and tokens must not live in this repository", s)
			}
		}
	})

	t.Run("file modes", func(t *testing.T) {
		for _, v := range pod.Volumes {
			if v.Secret == nil {
				continue
			}
			if v.Secret.DefaultMode == nil {
				t.Errorf("Secret volume %s: no defaultMode (0644: world-readable)", v.Name)
			} else if mode := *v.Secret.DefaultMode; mode&^0o440 != 0 {
				t.Errorf("Secret volume %s: defaultMode %#o, want at most 0440 (owner and fsGroup read)", v.Name, mode)
			}
			for _, it := range v.Secret.Items {
				if it.Mode != nil && *it.Mode&^0o440 != 0 {
					t.Errorf("Secret volume %s: item %s mode %#o, want at most 0440", v.Name, it.Key, *it.Mode)
				}
			}
		}
	})

	t.Run("probes need no plaintext gRPC", func(t *testing.T) {
		_, adminPort := addrPort(t, "admin-addr", flag("admin-addr"))
		for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "startup": c.StartupProbe, "liveness": c.LivenessProbe} {
			if p == nil {
				t.Errorf("no %s probe", name)
				continue
			}
			if p.GRPC != nil {
				t.Errorf("%s probe is the kubelet's gRPC probe, which cannot speak TLS", name)
				continue
			}
			want := "/readyz"
			if name == "liveness" {
				want = "/healthz"
			}
			h := p.HTTPGet
			if h == nil || h.Path != want || (h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP) {
				t.Errorf("%s probe: want GET %s over HTTP on the admin port: %+v", name, want, p.ProbeHandler)
				continue
			}
			if port, ok := containerPort(c, h.Port, corev1.ProtocolTCP); !ok || port != adminPort {
				t.Errorf("%s probe port %s is not the admin port %d", name, h.Port.String(), adminPort)
			}
		}
		if host, _ := addrPort(t, "admin-addr", flag("admin-addr")); host != "0.0.0.0" {
			t.Errorf("--admin-addr host %q: the kubelet probes the pod IP", host)
		}
	})

	t.Run("peers dial names a certificate can carry", func(t *testing.T) {
		mm := *m // as an overlay's namespace: would set it
		s := sts.DeepCopy()
		s.Namespace = "some-namespace"
		mm.statefulSets = []*appsv1.StatefulSet{s}
		names := dialNames(t, &mm)
		svc := m.services[sts.Spec.ServiceName]
		if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone || !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("the advertised names are those of Service %q, which must be headless and publish not-ready pods", sts.Spec.ServiceName)
		}
		if want := "ringcache-0.ringcache-headless.some-namespace.svc.cluster.local"; names[0] != want {
			t.Errorf("ringcache-0 advertises %s, want %s", names[0], want)
		}
	})

	t.Run("services do not claim h2c", func(t *testing.T) {
		for _, svc := range m.services {
			for _, sp := range svc.Spec.Ports {
				if sp.AppProtocol != nil && *sp.AppProtocol == "kubernetes.io/h2c" {
					t.Errorf("Service %s port %s: appProtocol kubernetes.io/h2c, but the port speaks TLS", svc.Name, sp.Name)
				}
			}
		}
	})

	t.Run("authorization", func(t *testing.T) {
		z, file := newAuthorizerFiles(t, m)
		node := auth.Principal{Name: nodeCN, Kind: auth.Certificate, Node: true}
		if err := z.Authorize(node, auth.RolePeer, ""); err != nil {
			t.Errorf("the node certificate's principal %q: %v", nodeCN, err)
		}
		for ns := range file.Namespaces {
			if err := z.Authorize(auth.Principal{}, auth.RoleRead, ns); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("an anonymous caller reading %s: %v, want UNAUTHENTICATED", ns, err)
			}
		}
		if err := z.Authorize(auth.Principal{Name: "ops", Kind: auth.Certificate}, auth.RoleAdmin, ""); err != nil {
			t.Errorf("ops, the README's operator: %v", err)
		}
		// The base's namespaces, unchanged: only who may use them is new.
		base := mountedConfig(t, render(t))
		if diff := cmp.Diff(base.Namespaces, file.Namespaces); diff != "" {
			t.Errorf("the overlay's namespaces differ from the base's (-base +overlay):\n%s", diff)
		}
	})

	t.Run("everything else is the base's", func(t *testing.T) {
		checkOnlyTLSChanged(t, render(t), m)
	})
}

// newAuthorizerFiles builds the Authorizer of m's config with an empty
// tokens file in place of the pod's.
func newAuthorizerFiles(t *testing.T, m *manifests) (*auth.Authorizer, *config.File) {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return newAuthorizer(t, m, tokens)
}

// TestTLSReadme runs README.md's procedure for deploy/k8s-tls (ringcachectl
// certs, one command per file, and the overlay that makes the Secrets),
// renders the overlay it writes, lays the mounted files out as the kubelet
// would, and loads them as ringcached does: the flags must name files that
// load, the certificate must cover every name peers and clients dial, and
// the auth: section must give each principal its role.
func TestTLSReadme(t *testing.T) {
	dir := runReadme(t, "<!-- tls_test.go (TestTLSReadme) runs this block -->")
	m := decode(t, kustomize(t, dir))
	sts, c := ringcacheNode(t, m)
	pod := &sts.Spec.Template.Spec
	flag := parseFlags(t, c)
	if sts.Namespace != "cache" {
		t.Errorf("namespace %q, want the README's cache", sts.Namespace)
	}
	checkFixedSecretNames(t, m)
	file := mountFiles(t, m, pod, c, t.TempDir())

	// The flags name the mounted files, and they load as ringcached loads them.
	src, err := tlsconf.Load(tlsconf.Files{Cert: file(flag("tls-cert")), Key: file(flag("tls-key")), CA: file(flag("tls-client-ca"))}, tlsconf.Options{})
	if err != nil {
		t.Fatalf("the mounted TLS files do not load: %v", err)
	}
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(file(flag("tls-client-ca")))
	if err != nil || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("the mounted CA does not parse: %v", err)
	}
	leaf := src.Certificate()
	checkNodeCertificate(t, leaf, roots, dialNames(t, m))

	// ca.key signs; no Secret may carry it to the cluster.
	caKey, err := os.ReadFile(filepath.Join(dir, "certs", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range m.secrets {
		for k, v := range s.Data {
			if bytes.Contains(v, bytes.TrimSpace(caKey)) {
				t.Errorf("Secret %s key %s holds the CA key", name, k)
			}
		}
	}
	if !validGossipKey(m.secrets["ringcache-gossip"].Data["key"]) {
		t.Errorf("the README's gossip key is not a valid key")
	}

	// Principals: the node certificate is a peer, the ops certificate an
	// admin, web's token may read and write sessions, and nobody else may.
	f := mountedConfig(t, m)
	z, _ := newAuthorizer(t, m, file(f.Auth.TokensFile))
	if _, err := audit.LoadKey(file(f.Auth.AuditKeyFile), ""); err != nil {
		t.Errorf("the mounted audit key: %v", err)
	}
	identify := func(cr auth.Credentials) auth.Principal {
		t.Helper()
		p, err := z.Identify(cr)
		if err != nil {
			t.Fatalf("identify: %v", err)
		}
		return p
	}
	// A peer dials ringcache-1 by its advertised name with the same files
	// and presents the node certificate; the server verifies it.
	serverCfg, err := src.ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	peerCfg := src.ClientConfig()
	peerCfg.ServerName = dialNames(t, m)[1]
	state := handshake(t, serverCfg, peerCfg)
	node := identify(auth.Credentials{Certificate: auth.VerifiedLeaf(state)})
	if node.Name != nodeCN || !node.Node {
		t.Errorf("the node certificate identifies %+v, want node principal %q", node, nodeCN)
	}
	if err := z.Authorize(node, auth.RolePeer, ""); err != nil {
		t.Errorf("the nodes cannot call each other: %v", err)
	}
	opsLeaf := readCert(t, filepath.Join(dir, "certs", "client.ops.crt"))
	if _, err := opsLeaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the ops certificate does not verify against the mounted CA: %v", err)
	}
	opsP := identify(auth.Credentials{Certificate: opsLeaf})
	if err := z.Authorize(opsP, auth.RoleAdmin, ""); err != nil {
		t.Errorf("ops: %v", err)
	}
	if err := z.Authorize(opsP, auth.RolePeer, ""); err == nil {
		t.Errorf("a client certificate got the peer role")
	}
	token, err := os.ReadFile(filepath.Join(dir, "web.token"))
	if err != nil {
		t.Fatal(err)
	}
	// web has no certificate: it connects to the Service with the CA alone
	// and presents its token.
	caOnly, err := tlsconf.Load(tlsconf.Files{CA: file(flag("tls-client-ca"))}, tlsconf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	webCfg := caOnly.ClientConfig()
	webCfg.ServerName = "ringcache." + sts.Namespace + ".svc"
	if leaf := auth.VerifiedLeaf(handshake(t, serverCfg, webCfg)); leaf != nil {
		t.Errorf("a client without a certificate presented %q", leaf.Subject)
	}
	web := identify(auth.Credentials{Token: strings.TrimSpace(string(token))})
	if web.Name != "web" {
		t.Fatalf("web's token identifies %+v", web)
	}
	for _, r := range []auth.Role{auth.RoleRead, auth.RoleWrite} {
		if err := z.Authorize(web, r, "sessions"); err != nil {
			t.Errorf("web: %v", err)
		}
	}
	for _, r := range []auth.Role{auth.RoleAdmin, auth.RolePeer} {
		if err := z.Authorize(web, r, ""); err == nil {
			t.Errorf("web's token got the %v role", r)
		}
	}
	if _, err := z.Identify(auth.Credentials{Token: "not-" + web.Name + "-token"}); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("a bad token: %v, want UNAUTHENTICATED", err)
	}
}

// handshake runs a TLS handshake between server and client over a pipe and
// returns what the server saw.
func handshake(t *testing.T, server, client *tls.Config) tls.ConnectionState {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv, cli := tls.Server(a, server), tls.Client(b, client)
	errc := make(chan error, 1)
	go func() { errc <- cli.HandshakeContext(t.Context()) }()
	if err := srv.HandshakeContext(t.Context()); err != nil {
		t.Fatalf("TLS handshake, server side: %v (client side: %v)", err, <-errc)
	}
	if err := <-errc; err != nil {
		t.Fatalf("TLS handshake, client side: %v", err)
	}
	if v := srv.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version %#x, want 1.3", v)
	}
	return srv.ConnectionState()
}

// readCert reads the first certificate of a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s does not start with a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
