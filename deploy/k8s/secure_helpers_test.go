package k8s

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/ctl"
)

// The README's procedures call ringcachectl. The test puts a link named
// ringcachectl to its own binary on PATH and sets ctlEnv; TestMain then runs
// ringcachectl's command tree instead of the tests (as cmd/ctl's main does).
const ctlEnv = "RINGCACHE_K8S_TEST_AS_RINGCACHECTL"

func TestMain(m *testing.M) {
	if os.Getenv(ctlEnv) == "1" {
		cmd := ctl.NewRootCommand()
		cmd.SetArgs(os.Args[1:])
		if err := cmd.Execute(); err != nil {
			fmt.Fprintf(os.Stderr, "ringcachectl: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// renderDir renders the kustomization at rel, a slash-separated path from
// the repository root.
func renderDir(t *testing.T, rel string) *manifests {
	t.Helper()
	return decode(t, kustomize(t, filepath.Join(repoRoot(t), filepath.FromSlash(rel))))
}

// readmeBlock returns the ```sh block that follows the line marker in
// deploy/k8s/README.md.
func readmeBlock(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "k8s", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), marker+"\n")
	if !ok {
		t.Fatalf("README.md has no line %q", marker)
	}
	body, ok := strings.CutPrefix(after, "```sh\n")
	if !ok {
		t.Fatalf("README.md: %q is not followed by a ```sh block", marker)
	}
	block, _, ok := strings.Cut(body, "\n```\n")
	if !ok {
		t.Fatalf("README.md: the block after %q does not end", marker)
	}
	return block + "\n"
}

// runReadme runs the README block after marker with bash, as a user would:
// in a new directory that holds this repository as ./ringcache (the
// block's RINGCACHE=../ringcache, seen from the my-ringcache it makes), with
// ringcachectl on PATH. It returns the directory the block ended in.
func runReadme(t *testing.T, marker string) string {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is not on PATH: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "ringcachectl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(repoRoot(t), filepath.Join(work, "ringcache")); err != nil {
		t.Fatal(err)
	}
	end := filepath.Join(work, "end")
	script := readmeBlock(t, marker) + "pwd > " + end + "\n"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), ctlEnv+"=1", "HOME="+work)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README block after %q fails: %v\n%s\n--- block ---\n%s", marker, err, out.String(), script)
	}
	dir, err := os.ReadFile(end)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(dir))
}

// mountFiles writes what the kubelet would project into the container from
// every Secret and ConfigMap volume of m, under root (root + mountPath +
// item path), with the volume's modes. It returns the map from a path in the
// pod to the file written for it.
func mountFiles(t *testing.T, m *manifests, pod *corev1.PodSpec, c *corev1.Container, root string) func(string) string {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name != vm.Name {
				continue
			}
			var data map[string][]byte
			var items []corev1.KeyToPath
			mode := int32(0o644)
			switch {
			case v.Secret != nil:
				s, ok := m.secrets[v.Secret.SecretName]
				if !ok { // made by someone else, e.g. cert-manager
					t.Logf("volume %s: Secret %q is not rendered; its files are not laid out", v.Name, v.Secret.SecretName)
					continue
				}
				data, items = s.Data, v.Secret.Items
				if v.Secret.DefaultMode != nil {
					mode = *v.Secret.DefaultMode
				}
			case v.ConfigMap != nil:
				cm, ok := m.configMaps[v.ConfigMap.Name]
				if !ok {
					t.Fatalf("volume %s: ConfigMap %q is not rendered", v.Name, v.ConfigMap.Name)
				}
				data, items = map[string][]byte{}, v.ConfigMap.Items
				for k, s := range cm.Data {
					data[k] = []byte(s)
				}
			default:
				continue
			}
			if len(items) == 0 {
				for k := range data {
					items = append(items, corev1.KeyToPath{Key: k, Path: k})
				}
			}
			for _, it := range items {
				b, ok := data[it.Key]
				if !ok {
					t.Fatalf("volume %s maps key %q, which its object does not have", v.Name, it.Key)
				}
				p := filepath.Join(root, vm.MountPath, it.Path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				fm := mode
				if it.Mode != nil {
					fm = *it.Mode
				}
				if err := os.WriteFile(p, b, os.FileMode(fm)|0o400); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return func(p string) string { return filepath.Join(root, p) }
}

// secretSource makes mountedObject look for a Secret volume.
func secretSource(v corev1.Volume) (string, []corev1.KeyToPath, bool) {
	if v.Secret == nil {
		return "", nil, false
	}
	return v.Secret.SecretName, v.Secret.Items, true
}

// dialNames is every name a peer or client dials that the node certificate
// must carry: each pod's advertised gRPC host, the names of the Services
// that expose the gRPC port, short and qualified, and the loopback names of
// kubectl port-forward and exec. It fails when the advertised host is the
// pod IP, which no certificate made in advance can name.
func dialNames(t *testing.T, m *manifests) []string {
	t.Helper()
	sts, c := ringcacheNode(t, m)
	flag := parseFlags(t, c)
	ns := sts.Namespace
	if ns == "" {
		t.Fatalf("StatefulSet %s has no namespace: the names to certify depend on it", sts.Name)
	}
	host, grpcPort := addrPort(t, "advertise-grpc-addr", flag("advertise-grpc-addr"))
	_, listen := addrPort(t, "grpc-addr", flag("grpc-addr"))
	if grpcPort != listen {
		t.Fatalf("--advertise-grpc-addr port %d is not the listen port %d", grpcPort, listen)
	}
	var names []string
	var domain string
	for i := range int(*sts.Spec.Replicas) {
		pod := fmt.Sprintf("%s-%d", sts.Name, i)
		h := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(host, func(ref string) string {
			name := ref[2 : len(ref)-1]
			switch envField(c, name) {
			case "metadata.name":
				return pod
			case "metadata.namespace":
				return ns
			case "":
				if v, ok := envValue(c, name); ok {
					return v
				}
				t.Fatalf("--advertise-grpc-addr references $(%s), which is not an env var", name)
			default:
				t.Fatalf("--advertise-grpc-addr uses $(%s) from %s: peers dial it and no certificate made in advance can name it; advertise the pod's DNS name", name, envField(c, name))
			}
			return ""
		})
		names = append(names, h)
		prefix := pod + "." + sts.Spec.ServiceName + "." + ns + ".svc."
		d, ok := strings.CutPrefix(h, prefix)
		if !ok {
			t.Fatalf("pod %s advertises %s, not its stable name %s<cluster domain>", pod, h, prefix)
		}
		domain = d
	}
	for _, svc := range m.services {
		exposes := false
		for _, sp := range svc.Spec.Ports {
			cp, ok := containerPort(c, sp.TargetPort, sp.Protocol)
			exposes = exposes || ok && cp == grpcPort
		}
		if exposes {
			names = append(names, svc.Name, svc.Name+"."+ns, svc.Name+"."+ns+".svc", svc.Name+"."+ns+".svc."+domain)
		}
	}
	return append(names, "localhost", "127.0.0.1")
}

// checkNodeCertificate checks that leaf is a node certificate signed by a
// CA of roots, usable to serve and to dial, valid for every name in names.
func checkNodeCertificate(t *testing.T, leaf *x509.Certificate, roots *x509.CertPool, names []string) {
	t.Helper()
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Errorf("node certificate %q does not verify for extended key usage %d against the CA: %v", leaf.Subject.CommonName, u, err)
		}
	}
	if !auth.IsNodeCertificate(leaf) {
		t.Errorf("certificate %q is no node certificate (serverAuth and clientAuth): peers would not get the peer role", leaf.Subject.CommonName)
	}
	for _, n := range names {
		if err := leaf.VerifyHostname(n); err != nil {
			t.Errorf("the node certificate does not cover %s, which peers or clients dial: %v", n, err)
		}
	}
}

// mountedConfig parses the ringcache.yaml the pods mount: m's ConfigMap at
// --config.
func mountedConfig(t *testing.T, m *manifests) *config.File {
	t.Helper()
	sts, c := ringcacheNode(t, m)
	flag := parseFlags(t, c)
	name, key := mountedObject(t, &sts.Spec.Template.Spec, c, flag("config"), func(v corev1.Volume) (string, []corev1.KeyToPath, bool) {
		if v.ConfigMap == nil {
			return "", nil, false
		}
		return v.ConfigMap.Name, v.ConfigMap.Items, true
	})
	cm, ok := m.configMaps[name]
	if !ok {
		t.Fatalf("--config is mounted from ConfigMap %q, which is not rendered", name)
	}
	f, err := config.Parse([]byte(cm.Data[key]), flag("data-dir"))
	if err != nil {
		t.Fatalf("ConfigMap %s %s: %v", name, key, err)
	}
	return f
}

// newAuthorizer builds the Authorizer of the auth: section the pods load,
// reading the tokens file from tokens instead of the pod's path when tokens
// is not "".
func newAuthorizer(t *testing.T, m *manifests, tokens string) (*auth.Authorizer, *config.File) {
	t.Helper()
	f := mountedConfig(t, m)
	if f.Auth == nil {
		t.Fatalf("the config has no auth: section: every caller may do everything")
	}
	a := *f.Auth
	if tokens != "" {
		a.TokensFile = tokens
	}
	z, err := auth.New(&a, auth.Options{})
	if err != nil {
		t.Fatalf("the auth: section: %v", err)
	}
	return z, f
}

// checkFixedSecretNames fails when the pods mount the TLS or auth files from
// a Secret with a generated name: with a hash suffix every change renames
// the Secret and rolls the pods, instead of updating the files in place for
// the nodes to reload.
func checkFixedSecretNames(t *testing.T, m *manifests) {
	t.Helper()
	sts, c := ringcacheNode(t, m)
	pod := &sts.Spec.Template.Spec
	flag := parseFlags(t, c)
	f := mountedConfig(t, m)
	for path, want := range map[string]string{
		flag("tls-cert"): tlsSecret, flag("tls-client-ca"): tlsSecret,
		f.Auth.TokensFile: authSecret, f.Auth.AuditKeyFile: authSecret,
	} {
		if name, _ := mountedObject(t, pod, c, path, secretSource); name != want {
			t.Errorf("%s comes from Secret %q, want %q: a generated name (hash suffix) turns every rotation into a rolling restart", path, name, want)
		}
	}
}
