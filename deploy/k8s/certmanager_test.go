package k8s

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ringcache/ringcache/internal/audit"
	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/certs"
)

// certificate and issuer are the fields of cert-manager.io/v1 Certificate
// and Issuer that deploy/k8s-cert-manager uses, named as cert-manager names
// them; decode is strict, so a misspelt field fails here instead of being
// dropped by the API server. A field not listed must be added here first.
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              certificateSpec `json:"spec"`
}

type certificateSpec struct {
	SecretName     string          `json:"secretName"`
	SecretTemplate *secretTemplate `json:"secretTemplate,omitempty"`
	CommonName     string          `json:"commonName,omitempty"`
	DNSNames       []string        `json:"dnsNames,omitempty"`
	IPAddresses    []string        `json:"ipAddresses,omitempty"`
	URIs           []string        `json:"uris,omitempty"`
	Usages         []string        `json:"usages,omitempty"`
	IsCA           bool            `json:"isCA,omitempty"`
	Duration       string          `json:"duration,omitempty"`
	RenewBefore    string          `json:"renewBefore,omitempty"`
	PrivateKey     *privateKey     `json:"privateKey,omitempty"`
	IssuerRef      issuerRef       `json:"issuerRef"`
}

type secretTemplate struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type privateKey struct {
	Algorithm      string `json:"algorithm,omitempty"`
	Size           int    `json:"size,omitempty"`
	Encoding       string `json:"encoding,omitempty"`
	RotationPolicy string `json:"rotationPolicy,omitempty"`
}

type issuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              issuerSpec `json:"spec"`
}

type issuerSpec struct {
	SelfSigned *struct{} `json:"selfSigned,omitempty"`
	CA         *caIssuer `json:"ca,omitempty"`
}

type caIssuer struct {
	SecretName string `json:"secretName"`
}

// The extended key usages of cert-manager's usage names; the other names it
// knows are key usages, which Go's verifier does not check.
var (
	extKeyUsages = map[string]x509.ExtKeyUsage{"server auth": x509.ExtKeyUsageServerAuth, "client auth": x509.ExtKeyUsageClientAuth}
	keyUsages    = []string{"signing", "digital signature", "content commitment", "key encipherment", "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only"}
)

// issue signs what cert-manager would issue for spec, with ca: the subject,
// names and extended key usages of the Certificate.
func issue(t *testing.T, ca *certs.CA, name string, spec certificateSpec) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: spec.CommonName},
		DNSNames:     spec.DNSNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	for _, s := range spec.IPAddresses {
		ip := net.ParseIP(s)
		if ip == nil {
			t.Errorf("Certificate %s: ipAddresses %q is not an IP address", name, s)
			continue
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	}
	for _, u := range spec.Usages {
		if eku, ok := extKeyUsages[u]; ok {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, eku)
		} else if !slices.Contains(keyUsages, u) {
			t.Errorf("Certificate %s: usage %q is not one cert-manager knows", name, u)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkCertManager checks the cert-manager objects of a render against the
// StatefulSet that mounts their Secret: the node Certificate fills the
// Secret the TLS flags name, from a CA Issuer backed by a CA Certificate
// that no pod mounts; what it would issue covers every name peers and
// clients dial and is a peer in the auth: section; client Certificates are
// clients only, of principals the auth: section knows.
func checkCertManager(t *testing.T, m *manifests) {
	t.Helper()
	sts, c := ringcacheNode(t, m)
	pod := &sts.Spec.Template.Spec
	flag := parseFlags(t, c)
	secret, _ := mountedObject(t, pod, c, flag("tls-cert"), secretSource)
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			for _, it := range v.Secret.Items {
				if !slices.Contains([]string{"tls.crt", "tls.key", "ca.crt"}, it.Key) {
					t.Errorf("volume %s maps key %q, which a cert-manager Secret does not have", v.Name, it.Key)
				}
			}
		}
	}
	var node *certificate
	for _, crt := range m.certificates {
		if crt.Spec.SecretName == secret {
			node = crt
		}
		if d, err := time.ParseDuration(crt.Spec.Duration); err != nil || d < time.Hour {
			t.Errorf("Certificate %s: duration %q: want a Go duration of at least 1h (%v)", crt.Name, crt.Spec.Duration, err)
		} else if r, err := time.ParseDuration(crt.Spec.RenewBefore); err != nil || r <= 0 || r >= d {
			t.Errorf("Certificate %s: renewBefore %q must lie within its duration %v (%v)", crt.Name, crt.Spec.RenewBefore, d, err)
		}
		if strings.Contains(strings.Join(crt.Spec.DNSNames, " "), "NAMESPACE") {
			t.Errorf("Certificate %s: a NAMESPACE placeholder is left in %v", crt.Name, crt.Spec.DNSNames)
		}
	}
	if node == nil {
		t.Fatalf("no Certificate fills Secret %s, which --tls-cert is mounted from", secret)
	}
	if pk := node.Spec.PrivateKey; pk == nil || pk.RotationPolicy != "Always" {
		t.Errorf("Certificate %s: privateKey.rotationPolicy must be Always: a renewal should not keep a key that may have leaked", node.Name)
	}

	// The issuer chain: a CA Issuer whose Secret an isCA Certificate fills,
	// issued by an Issuer of this render; no pod mounts the CA key.
	ref := node.Spec.IssuerRef
	iss, ok := m.issuers[ref.Name]
	if !ok || ref.Kind != "Issuer" || ref.Group != "cert-manager.io" {
		t.Fatalf("Certificate %s: issuerRef %+v names no Issuer of this render", node.Name, ref)
	}
	if iss.Spec.CA == nil {
		t.Fatalf("Issuer %s is not a CA issuer: ca.crt in %s would not be the CA that signs client certificates", iss.Name, secret)
	}
	var caCrt *certificate
	for _, crt := range m.certificates {
		if crt.Spec.SecretName == iss.Spec.CA.SecretName && crt.Spec.IsCA {
			caCrt = crt
		}
	}
	if caCrt == nil {
		t.Fatalf("no isCA Certificate fills Secret %s of Issuer %s", iss.Spec.CA.SecretName, iss.Name)
	}
	if _, ok := m.issuers[caCrt.Spec.IssuerRef.Name]; !ok {
		t.Errorf("the CA Certificate %s is issued by %q, not an Issuer of this render", caCrt.Name, caCrt.Spec.IssuerRef.Name)
	}
	if pk := caCrt.Spec.PrivateKey; pk == nil || pk.RotationPolicy != "Never" {
		t.Errorf("CA Certificate %s: privateKey.rotationPolicy must be Never: a renewal with a new key would leave nodes that trust only the old CA", caCrt.Name)
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == caCrt.Spec.SecretName {
			t.Errorf("volume %s mounts the CA's Secret %s, with the CA key, into every pod", v.Name, caCrt.Spec.SecretName)
		}
	}

	// What cert-manager would issue, against what peers and clients dial
	// and what the auth: section grants.
	ca, _, err := certs.NewCA(caCrt.Spec.CommonName, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	leaf := issue(t, ca, node.Name, node.Spec)
	checkNodeCertificate(t, leaf, roots, dialNames(t, m))
	z, _ := newAuthorizerFiles(t, m)
	p, err := z.Identify(auth.Credentials{Certificate: leaf})
	if err != nil {
		t.Fatal(err)
	}
	if err := z.Authorize(p, auth.RolePeer, ""); err != nil {
		t.Errorf("the node Certificate's principal: %v", err)
	}
	clients := 0
	for _, crt := range m.certificates {
		if crt == node || crt.Spec.IsCA {
			continue
		}
		clients++
		if slices.Contains(crt.Spec.Usages, "server auth") || !slices.Contains(crt.Spec.Usages, "client auth") {
			t.Errorf("client Certificate %s: usages %v, want client auth without server auth (else it could pass for a node)", crt.Name, crt.Spec.Usages)
		}
		p, err := z.Identify(auth.Credentials{Certificate: issue(t, ca, crt.Name, crt.Spec)})
		if err != nil {
			t.Fatal(err)
		}
		if p.Node {
			t.Errorf("client Certificate %s identifies a node", crt.Name)
		}
		if z.Authorize(p, auth.RoleAdmin, "") != nil && z.Authorize(p, auth.RoleRead, "sessions") != nil {
			t.Errorf("client Certificate %s: principal %q has no role in the auth: section", crt.Name, p.Name)
		}
	}
	if clients == 0 {
		t.Errorf("no client Certificate: the README promises one for ringcachectl")
	}
}

// TestCertManagerOverlay renders deploy/k8s-cert-manager, and a copy of it
// set to another namespace: the DNS names follow the namespace line.
func TestCertManagerOverlay(t *testing.T) {
	m := renderDir(t, "deploy/k8s-cert-manager")
	sts, _ := ringcacheNode(t, m)
	ns := sts.Namespace
	if ns == "" {
		t.Fatalf("deploy/k8s-cert-manager sets no namespace: the certificates' names need one")
	}
	checkCertManager(t, m)
	// Apart from its namespace and the cert-manager objects, it is the TLS
	// overlay.
	tls, cm := renderDir(t, "deploy/k8s-tls"), withoutCertManager(m)
	for _, x := range []*manifests{tls, cm} {
		for _, s := range x.statefulSets {
			s.Namespace = ""
		}
		for _, o := range x.services {
			o.Namespace = ""
		}
		for _, o := range x.configMaps {
			o.Namespace = ""
		}
		for _, o := range x.secrets {
			o.Namespace = ""
		}
		for _, o := range x.pdbs {
			o.Namespace = ""
		}
	}
	for what, pair := range map[string][2]any{
		"StatefulSet": {tls.statefulSets, cm.statefulSets}, "Services": {tls.services, cm.services},
		"ConfigMaps": {tls.configMaps, cm.configMaps}, "Secrets": {tls.secrets, cm.secrets}, "PDB": {tls.pdbs, cm.pdbs},
	} {
		if diff := cmp.Diff(pair[0], pair[1]); diff != "" {
			t.Errorf("%s differ from deploy/k8s-tls's (-tls +cert-manager):\n%s", what, diff)
		}
	}

	root := repoRoot(t)
	tmp := t.TempDir()
	for _, d := range []string{"k8s", "k8s-tls", "k8s-cert-manager"} {
		if err := os.CopyFS(filepath.Join(tmp, d), os.DirFS(filepath.Join(root, "deploy", d))); err != nil {
			t.Fatal(err)
		}
	}
	kz := filepath.Join(tmp, "k8s-cert-manager", "kustomization.yaml")
	b, err := os.ReadFile(kz)
	if err != nil {
		t.Fatal(err)
	}
	line := "namespace: " + ns + "\n"
	if !strings.Contains(string(b), "\n"+line) {
		t.Fatalf("%s has no line %q", kz, line)
	}
	if err := os.WriteFile(kz, []byte(strings.Replace(string(b), "\n"+line, "\nnamespace: elsewhere\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	other := decode(t, kustomize(t, filepath.Join(tmp, "k8s-cert-manager")))
	if s, _ := ringcacheNode(t, other); s.Namespace != "elsewhere" {
		t.Fatalf("namespace %q after changing the line, want elsewhere", s.Namespace)
	}
	checkCertManager(t, other)
}

// withoutCertManager returns m without its cert-manager objects.
func withoutCertManager(m *manifests) *manifests {
	out := *m
	out.certificates, out.issuers = nil, nil
	return &out
}

// TestCertManagerReadme runs README.md's procedure for cert-manager and
// checks the overlay it writes: the Secrets it adds are the ones the pods
// mount, and they load.
func TestCertManagerReadme(t *testing.T) {
	dir := runReadme(t, "<!-- certmanager_test.go (TestCertManagerReadme) runs this block -->")
	m := decode(t, kustomize(t, dir))
	checkCertManager(t, m)
	checkFixedSecretNames(t, m)
	sts, c := ringcacheNode(t, m)
	file := mountFiles(t, m, &sts.Spec.Template.Spec, c, t.TempDir())
	f := mountedConfig(t, m)
	z, _ := newAuthorizer(t, m, file(f.Auth.TokensFile))
	if _, err := audit.LoadKey(file(f.Auth.AuditKeyFile), ""); err != nil {
		t.Errorf("the mounted audit key: %v", err)
	}
	token, err := os.ReadFile(filepath.Join(dir, "web.token"))
	if err != nil {
		t.Fatal(err)
	}
	web, err := z.Identify(auth.Credentials{Token: strings.TrimSpace(string(token))})
	if err != nil || web.Name != "web" {
		t.Fatalf("web's token identifies %+v, %v", web, err)
	}
	if err := z.Authorize(web, auth.RoleWrite, "sessions"); err != nil {
		t.Errorf("web: %v", err)
	}
	if _, err := z.Identify(auth.Credentials{Token: "x" + string(token)}); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("a bad token: %v, want UNAUTHENTICATED", err)
	}
	if !validGossipKey(m.secrets["ringcache-gossip"].Data["key"]) {
		t.Errorf("the README's gossip key is not a valid key")
	}
}
