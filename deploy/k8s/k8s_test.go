// Package k8s holds the kustomize base of a ringcache cluster; its test
// renders the base with `kubectl kustomize`, decodes every object strictly
// into its k8s.io/api type and checks that the pieces fit together: the flags
// of ringcached against the Services, probes, volumes, ConfigMap and Secret
// they depend on.
package k8s

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dustin/go-humanize"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/daemon"
	"github.com/ringcache/ringcache/pkg/node"
)

const (
	module   = "github.com/ringcache/ringcache"
	appLabel = "app.kubernetes.io/name"
	appName  = "ringcache"
	nonRoot  = 65532 // the distroless nonroot user the Dockerfile runs as
)

// manifests is the rendered base, decoded.
type manifests struct {
	statefulSets []*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	pdbs         []*policyv1.PodDisruptionBudget
	certificates map[string]*certificate      // cert-manager.io/v1
	issuers      map[string]*issuer           // cert-manager.io/v1
	metas        map[string]metav1.ObjectMeta // "Kind/name" → metadata
}

// repoRoot walks up from the test's working directory to the go.mod of this
// module.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			regexp.MustCompile(`(?m)^module\s+`+regexp.QuoteMeta(module)+`\s*$`).Match(b) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of module %s above the working directory", module)
		}
		dir = parent
	}
}

// kustomize renders dir with `kubectl kustomize`. Without kubectl the test is
// skipped, or fails when CI=true.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kubectl is not on PATH (CI=true, so this is a failure): %v", err)
		}
		t.Skipf("kubectl is not on PATH: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return stdout.Bytes()
}

// splitDocs splits a multi-document YAML stream on its `---` lines.
func splitDocs(stream []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if len(bytes.TrimSpace(cur.Bytes())) > 0 {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for line := range bytes.Lines(stream) {
		if s := strings.TrimRight(string(line), "\r\n"); s == "---" || strings.HasPrefix(s, "--- ") {
			flush()
			continue
		}
		cur.Write(line)
	}
	flush()
	return docs
}

// decode decodes every document strictly (unknown or duplicate fields are
// errors) into the k8s.io/api type of its apiVersion and kind.
func decode(t *testing.T, stream []byte) *manifests {
	t.Helper()
	m := &manifests{
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		secrets:      map[string]*corev1.Secret{},
		certificates: map[string]*certificate{},
		issuers:      map[string]*issuer{},
		metas:        map[string]metav1.ObjectMeta{},
	}
	for i, doc := range splitDocs(stream) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		strict := func(obj any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("document %d (%s %s): strict decode: %v", i, tm.APIVersion, tm.Kind, err)
			}
		}
		var meta metav1.ObjectMeta
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 StatefulSet":
			o := &appsv1.StatefulSet{}
			strict(o)
			m.statefulSets, meta = append(m.statefulSets, o), o.ObjectMeta
		case "v1 Service":
			o := &corev1.Service{}
			strict(o)
			m.services[o.Name], meta = o, o.ObjectMeta
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			strict(o)
			m.configMaps[o.Name], meta = o, o.ObjectMeta
		case "v1 Secret":
			o := &corev1.Secret{}
			strict(o)
			m.secrets[o.Name], meta = o, o.ObjectMeta
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			strict(o)
			m.pdbs, meta = append(m.pdbs, o), o.ObjectMeta
		case "cert-manager.io/v1 Certificate":
			o := &certificate{}
			strict(o)
			m.certificates[o.Name], meta = o, o.ObjectMeta
		case "cert-manager.io/v1 Issuer":
			o := &issuer{}
			strict(o)
			m.issuers[o.Name], meta = o, o.ObjectMeta
		default:
			t.Fatalf("document %d: %s %q has no decoder in this test: add one, and the invariants it must keep", i, tm.APIVersion, tm.Kind)
		}
		key := tm.Kind + "/" + meta.Name
		if _, dup := m.metas[key]; dup {
			t.Fatalf("%s appears twice", key)
		}
		m.metas[key] = meta
	}
	return m
}

func render(t *testing.T) *manifests {
	t.Helper()
	return decode(t, kustomize(t, filepath.Join(repoRoot(t), "deploy", "k8s")))
}

// node is the one StatefulSet and its ringcached container.
func ringcacheNode(t *testing.T, m *manifests) (*appsv1.StatefulSet, *corev1.Container) {
	t.Helper()
	if len(m.statefulSets) != 1 {
		t.Fatalf("want 1 StatefulSet, got %d", len(m.statefulSets))
	}
	sts := m.statefulSets[0]
	cs := sts.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("StatefulSet %s: want 1 container, got %d", sts.Name, len(cs))
	}
	return sts, &cs[0]
}

// parseFlags parses the container's args with ringcached's own flag set, so
// every flag must exist there and the values not given take its defaults.
func parseFlags(t *testing.T, c *corev1.Container) func(name string) string {
	t.Helper()
	if len(c.Command) != 0 {
		t.Errorf("container %s sets command %q: the image's ENTRYPOINT is ringcached", c.Name, c.Command)
	}
	fs := daemon.NewCommand().Flags()
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("container args do not parse as ringcached flags: %v", err)
	}
	if fs.NArg() != 0 {
		t.Fatalf("container args: unexpected positional arguments %q", fs.Args())
	}
	return func(name string) string {
		if f := fs.Lookup(name); f != nil {
			if sv, ok := f.Value.(interface{ GetSlice() []string }); ok {
				return strings.Join(sv.GetSlice(), ",")
			}
			return f.Value.String()
		}
		// A pending flag: read it from the raw args (a bare --flag is a
		// boolean set to true).
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
			if a == "--"+name {
				return "true"
			}
		}
		t.Fatalf("container args: no --%s", name)
		return ""
	}
}

// argGiven reports whether the container's args set --name, with or without
// a value; it works for pending flags too.
func argGiven(c *corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Args, func(a string) bool {
		return a == "--"+name || strings.HasPrefix(a, "--"+name+"=")
	})
}

// envField returns the fieldRef path of env var name, or "".
func envField(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	return ""
}

func envValue(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value, true
		}
	}
	return "", false
}

// varRef matches a whole $(VAR) argument reference.
var varRef = regexp.MustCompile(`^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$`)

// containerPort resolves a probe's or Service's port (number or name) to the
// container port with that protocol.
func containerPort(c *corev1.Container, p intstr.IntOrString, proto corev1.Protocol) (int32, bool) {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, cp := range c.Ports {
		pp := cp.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if pp != proto {
			continue
		}
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// addrPort returns the port of a host:port flag value.
func addrPort(t *testing.T, flag, v string) (string, int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		t.Fatalf("--%s=%s: %v", flag, v, err)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil {
		t.Fatalf("--%s=%s: port: %v", flag, v, err)
	}
	return host, int32(n)
}

func selects(t *testing.T, sel *metav1.LabelSelector, lbls map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(lbls))
}

func TestBase(t *testing.T) {
	m := render(t)
	sts, c := ringcacheNode(t, m)
	pod := &sts.Spec.Template.Spec
	podLabels := sts.Spec.Template.Labels
	flag := parseFlags(t, c)

	// Every $(VAR) in the args is an env var of the container, defined
	// before use; Kubernetes leaves an unknown reference as literal text.
	for _, a := range c.Args {
		for _, ref := range regexp.MustCompile(`\$\(([^)]*)\)`).FindAllStringSubmatch(a, -1) {
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == ref[1] }) {
				t.Errorf("arg %q references $(%s), which is not an env var of the container", a, ref[1])
			}
		}
	}

	grpcHost, grpcPort := addrPort(t, "grpc-addr", flag("grpc-addr"))
	gossipHost, gossipPort := addrPort(t, "gossip-addr", flag("gossip-addr"))
	adminHost, adminPort := addrPort(t, "admin-addr", flag("admin-addr"))

	t.Run("listeners and ports", func(t *testing.T) {
		for name, host := range map[string]string{"grpc-addr": grpcHost, "gossip-addr": gossipHost, "admin-addr": adminHost} {
			if host != "0.0.0.0" && host != "" && host != "::" {
				t.Errorf("--%s listens on %q: kubelet probes and peers reach the pod IP, listen on 0.0.0.0", name, host)
			}
		}
		for _, want := range []struct {
			port  int32
			proto corev1.Protocol
			what  string
		}{{grpcPort, corev1.ProtocolTCP, "gRPC"}, {gossipPort, corev1.ProtocolTCP, "gossip"}, {gossipPort, corev1.ProtocolUDP, "gossip"}, {adminPort, corev1.ProtocolTCP, "admin"}} {
			if _, ok := containerPort(c, intstr.FromInt32(want.port), want.proto); !ok {
				t.Errorf("%s port %d/%s is not a container port", want.what, want.port, want.proto)
			}
		}
		// Peers dial the pod IP on the listen ports.
		for adv, listen := range map[string]int32{"advertise-grpc-addr": grpcPort, "advertise-gossip-addr": gossipPort} {
			host, port := addrPort(t, adv, flag(adv))
			if port != listen {
				t.Errorf("--%s port %d != listen port %d", adv, port, listen)
			}
			if sm := varRef.FindStringSubmatch(host); sm == nil || envField(c, sm[1]) != "status.podIP" {
				t.Errorf("--%s host %q is not $(VAR) with VAR from fieldRef status.podIP", adv, host)
			}
		}
		if sm := varRef.FindStringSubmatch(flag("name")); sm == nil || envField(c, sm[1]) != "metadata.name" {
			t.Errorf("--name=%s is not the pod name (stable per StatefulSet ordinal)", flag("name"))
		}
	})

	t.Run("plaintext says so", func(t *testing.T) {
		// ringcached refuses a non-loopback address without TLS unless
		// --insecure is given; the base listens on 0.0.0.0 without TLS.
		if flag("insecure") != "true" {
			t.Errorf("the base listens on %s without TLS: it must pass --insecure, or ringcached refuses to start", flag("grpc-addr"))
		}
		for _, f := range []string{"tls-cert", "tls-key", "tls-client-ca", "tls-require-client-cert", "pprof"} {
			if argGiven(c, f) {
				t.Errorf("the plaintext base passes --%s: TLS belongs to deploy/k8s-tls, profiles to nobody by default", f)
			}
		}
	})

	t.Run("headless service and join", func(t *testing.T) {
		if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("podManagementPolicy %q, want Parallel", sts.Spec.PodManagementPolicy)
		}
		if sts.Spec.Replicas == nil || *sts.Spec.Replicas < 3 {
			t.Errorf("replicas %v, want at least 3", sts.Spec.Replicas)
		}
		if !selects(t, sts.Spec.Selector, podLabels) {
			t.Errorf("StatefulSet selector does not select its own pod template")
		}
		svc, ok := m.services[sts.Spec.ServiceName]
		if !ok {
			t.Fatalf("serviceName %q names no Service in the base", sts.Spec.ServiceName)
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s: clusterIP %q, want None (headless)", svc.Name, svc.Spec.ClusterIP)
		}
		if !svc.Spec.PublishNotReadyAddresses {
			t.Errorf("Service %s: publishNotReadyAddresses must be true: nodes join before they are ready", svc.Name)
		}
		joins := strings.Split(flag("join"), ",")
		if len(joins) != 1 {
			t.Fatalf("--join=%s: want the one headless Service name", flag("join"))
		}
		host, port := addrPort(t, "join", joins[0])
		parts := strings.Split(strings.TrimSuffix(host, "."), ".")
		if len(parts) < 3 || parts[0] != svc.Name || parts[2] != "svc" {
			t.Fatalf("--join host %q is not %s.<namespace>.svc[.<cluster domain>]", host, svc.Name)
		}
		if sm := varRef.FindStringSubmatch(parts[1]); sm == nil || envField(c, sm[1]) != "metadata.namespace" {
			if sts.Namespace == "" || parts[1] != sts.Namespace {
				t.Errorf("--join namespace label %q is neither $(VAR) from fieldRef metadata.namespace nor the StatefulSet's namespace", parts[1])
			}
		}
		// The Service must expose the join port on both gossip protocols,
		// forwarding to the container's gossip port.
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			found := false
			for _, sp := range svc.Spec.Ports {
				p := sp.Protocol
				if p == "" {
					p = corev1.ProtocolTCP
				}
				if sp.Port != port || p != proto {
					continue
				}
				target := sp.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(sp.Port)
				}
				if cp, ok := containerPort(c, target, proto); ok && cp == gossipPort {
					found = true
				}
			}
			if !found {
				t.Errorf("Service %s has no %s port %d forwarding to gossip port %d (--join=%s)", svc.Name, proto, port, gossipPort, joins[0])
			}
		}
	})

	t.Run("services", func(t *testing.T) {
		if len(m.services) < 2 {
			t.Errorf("want the headless and the client Service, got %d Services", len(m.services))
		}
		for _, svc := range m.services {
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) || len(svc.Spec.Selector) == 0 {
				t.Errorf("Service %s selector %v does not select the ringcache pods", svc.Name, svc.Spec.Selector)
			}
			for _, sp := range svc.Spec.Ports {
				target := sp.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(sp.Port)
				}
				if _, ok := containerPort(c, target, sp.Protocol); !ok {
					t.Errorf("Service %s port %s targets %s/%s, not a container port", svc.Name, sp.Name, target.String(), sp.Protocol)
				}
			}
		}
		client, ok := m.services[appName]
		if !ok {
			t.Fatalf("no client Service %q", appName)
		}
		if client.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("Service %s must have a cluster IP", client.Name)
		}
		for _, want := range []int32{grpcPort, adminPort} {
			if !slices.ContainsFunc(client.Spec.Ports, func(sp corev1.ServicePort) bool {
				cp, ok := containerPort(c, sp.TargetPort, sp.Protocol)
				return ok && cp == want
			}) {
				t.Errorf("Service %s does not expose container port %d", client.Name, want)
			}
		}
	})

	t.Run("probes", func(t *testing.T) {
		grpcHealth := func(p *corev1.Probe) bool {
			return p != nil && p.GRPC != nil && p.GRPC.Port == grpcPort && (p.GRPC.Service == nil || *p.GRPC.Service == "")
		}
		healthz := func(p *corev1.Probe) bool {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
				return false
			}
			port, ok := containerPort(c, p.HTTPGet.Port, corev1.ProtocolTCP)
			return ok && port == adminPort && (p.HTTPGet.Scheme == "" || p.HTTPGet.Scheme == corev1.URISchemeHTTP)
		}
		if !grpcHealth(c.ReadinessProbe) {
			t.Errorf("readinessProbe must be grpc.health.v1 (service \"\") on the gRPC port %d: %+v", grpcPort, c.ReadinessProbe)
		}
		if !grpcHealth(c.LivenessProbe) && !healthz(c.LivenessProbe) {
			t.Errorf("livenessProbe must be grpc.health.v1 on port %d or GET /healthz on the admin port %d: %+v", grpcPort, adminPort, c.LivenessProbe)
		}
		if c.StartupProbe != nil && !grpcHealth(c.StartupProbe) && !healthz(c.StartupProbe) {
			t.Errorf("startupProbe must be grpc.health.v1 on port %d or GET /healthz on port %d: %+v", grpcPort, adminPort, c.StartupProbe)
		}
		// Liveness must tolerate a node that is joining: it reports
		// NOT_SERVING for up to --bootstrap-timeout.
		bootstrap, err := time.ParseDuration(flag("bootstrap-timeout"))
		if err != nil {
			t.Fatal(err)
		}
		if c.StartupProbe == nil && c.LivenessProbe != nil {
			lp := c.LivenessProbe
			if budget := time.Duration(lp.InitialDelaySeconds+lp.PeriodSeconds*lp.FailureThreshold) * time.Second; budget <= bootstrap {
				t.Errorf("without a startupProbe, liveness gives up after %v, within --bootstrap-timeout %v", budget, bootstrap)
			}
		}
		if sp := c.StartupProbe; sp != nil {
			if budget := time.Duration(sp.InitialDelaySeconds+sp.PeriodSeconds*sp.FailureThreshold) * time.Second; budget <= bootstrap {
				t.Errorf("startupProbe gives up after %v, within --bootstrap-timeout %v", budget, bootstrap)
			}
		}
		// Every port a probe names exists on the container.
		for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
			if p == nil {
				continue
			}
			var port intstr.IntOrString
			switch {
			case p.GRPC != nil:
				port = intstr.FromInt32(p.GRPC.Port)
			case p.HTTPGet != nil:
				port = p.HTTPGet.Port
			case p.TCPSocket != nil:
				port = p.TCPSocket.Port
			default:
				continue
			}
			if _, ok := containerPort(c, port, corev1.ProtocolTCP); !ok {
				t.Errorf("%s probe port %s is not a TCP container port", name, port.String())
			}
		}
	})

	t.Run("data volume", func(t *testing.T) {
		dataDir := filepath.Clean(flag("data-dir"))
		var vct *corev1.PersistentVolumeClaim
		for i := range sts.Spec.VolumeClaimTemplates {
			if sts.Spec.VolumeClaimTemplates[i].Name == "data" {
				vct = &sts.Spec.VolumeClaimTemplates[i]
			}
		}
		if vct == nil {
			t.Fatalf("no volumeClaimTemplate named data")
		}
		if !slices.Contains(vct.Spec.AccessModes, corev1.ReadWriteOnce) {
			t.Errorf("volumeClaimTemplate data: access modes %v, want ReadWriteOnce", vct.Spec.AccessModes)
		}
		if q := vct.Spec.Resources.Requests.Storage(); q.IsZero() {
			t.Errorf("volumeClaimTemplate data requests no storage")
		}
		if slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "data" }) {
			t.Errorf("a pod volume named data shadows the volumeClaimTemplate")
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return vm.Name == "data" && filepath.Clean(vm.MountPath) == dataDir && !vm.ReadOnly && vm.SubPath == ""
		}) {
			t.Errorf("the data volume is not mounted read-write at --data-dir=%s", dataDir)
		}
		if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p != nil && p.WhenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
			t.Errorf("whenScaled: Delete would drop a scaled-down node's unflushed journal")
		}
	})

	t.Run("termination grace", func(t *testing.T) {
		flush, err := time.ParseDuration(flag("flush-timeout"))
		if err != nil {
			t.Fatal(err)
		}
		shutdown, err := time.ParseDuration(flag("shutdown-timeout"))
		if err != nil {
			t.Fatal(err)
		}
		// Node.Close: announce leaving (LeaveTimeout/2), then leave
		// (LeaveTimeout), then wait for the peers to route around it.
		leave := node.DefaultLeaveTimeout*3/2 + node.RoutedAroundTimeout
		drain := flush + leave + shutdown
		g := pod.TerminationGracePeriodSeconds
		if g == nil {
			t.Fatalf("terminationGracePeriodSeconds unset (30s), want more than flush %v + leave %v + shutdown %v = %v", flush, leave, shutdown, drain)
		}
		if time.Duration(*g)*time.Second <= drain {
			t.Errorf("terminationGracePeriodSeconds %d must exceed flush %v + leave %v + shutdown %v = %v", *g, flush, leave, shutdown, drain)
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.StartupProbe} {
			if p != nil && p.TerminationGracePeriodSeconds != nil {
				t.Errorf("a probe-level terminationGracePeriodSeconds would cut the drain short")
			}
		}
	})

	t.Run("config", func(t *testing.T) {
		dataDir := filepath.Clean(flag("data-dir"))
		cm, key := mountedObject(t, pod, c, flag("config"), func(v corev1.Volume) (string, []corev1.KeyToPath, bool) {
			if v.ConfigMap == nil {
				return "", nil, false
			}
			return v.ConfigMap.Name, v.ConfigMap.Items, true
		})
		obj, ok := m.configMaps[cm]
		if !ok {
			t.Fatalf("--config is mounted from ConfigMap %q, which is not in the base", cm)
		}
		doc, ok := obj.Data[key]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %q", cm, key)
		}
		f, err := config.Parse([]byte(doc), dataDir)
		if err != nil {
			t.Fatalf("ConfigMap %s %s: %v", cm, key, err)
		}
		checkSQLitePaths(t, f, dataDir)

		// The commented PostgreSQL example must parse once uncommented.
		ex := commentedExample(t, doc)
		pf, err := config.Parse([]byte(ex), dataDir)
		if err != nil {
			t.Fatalf("the commented PostgreSQL example in %s does not parse: %v\n%s", key, err, ex)
		}
		var pg, behind bool
		for _, b := range pf.Backends {
			pg = pg || b.Driver == "postgres"
		}
		for _, ns := range pf.Namespaces {
			behind = behind || ns.Write == config.ModeBehind
		}
		if !pg || !behind {
			t.Errorf("the PostgreSQL example should show a postgres backend (%v) and a write-behind namespace (%v)", pg, behind)
		}
	})

	t.Run("gossip key", func(t *testing.T) {
		name, key := mountedObject(t, pod, c, flag("gossip-key-file"), func(v corev1.Volume) (string, []corev1.KeyToPath, bool) {
			if v.Secret == nil {
				return "", nil, false
			}
			return v.Secret.SecretName, v.Secret.Items, true
		})
		s, ok := m.secrets[name]
		if !ok {
			t.Fatalf("--gossip-key-file is mounted from Secret %q, which is not in the base", name)
		}
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		if !inData && !inString {
			t.Errorf("Secret %s has no key %q", name, key)
		}
		if v := s.StringData[key]; inString && validGossipKey([]byte(v)) {
			t.Errorf("Secret %s ships a valid gossip key: every cluster deployed from this repository would share it; keep an invalid placeholder", name)
		}
	})

	t.Run("security", func(t *testing.T) {
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonRoot {
			t.Errorf("pod securityContext: want runAsNonRoot and runAsUser %d: %+v", nonRoot, psc)
		}
		if psc == nil || psc.FSGroup == nil {
			t.Errorf("pod securityContext: fsGroup unset, the PVC would not be writable by user %d", nonRoot)
		}
		if pod.HostNetwork || pod.HostPID || pod.HostIPC {
			t.Errorf("pod uses host namespaces")
		}
		sc := c.SecurityContext
		if sc == nil {
			t.Fatalf("container %s has no securityContext", c.Name)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser != nonRoot {
			t.Errorf("container securityContext overrides the non-root user: %+v", sc)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("readOnlyRootFilesystem must be true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("allowPrivilegeEscalation must be false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("privileged container")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("capabilities: want drop [ALL] and no add: %+v", sc.Capabilities)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil && psc != nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccompProfile: want RuntimeDefault: %+v", seccomp)
		}
		// A read-only root filesystem needs writable mounts for the data
		// dir (checked above) and the temp dir.
		if !slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == "/tmp" && !vm.ReadOnly }) {
			t.Errorf("no writable /tmp mount under a read-only root filesystem")
		}
	})

	t.Run("memory", func(t *testing.T) {
		maxMem, err := humanize.ParseBytes(flag("max-memory"))
		if err != nil {
			t.Fatal(err)
		}
		limit := c.Resources.Limits.Memory()
		request := c.Resources.Requests.Memory()
		if limit.IsZero() || request.IsZero() {
			t.Fatalf("memory request and limit must be set: %+v", c.Resources)
		}
		if c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("no cpu request")
		}
		if lim := uint64(limit.Value()); maxMem > lim*3/4 {
			t.Errorf("--max-memory %s leaves less than 25%% of the %s limit for the Go runtime, gRPC and the journal", humanize.IBytes(maxMem), limit)
		}
		if v, ok := envValue(c, "GOMEMLIMIT"); ok {
			gml, err := humanize.ParseBytes(v)
			if err != nil {
				t.Fatalf("GOMEMLIMIT=%s: %v", v, err)
			}
			if gml <= maxMem || gml >= uint64(limit.Value()) {
				t.Errorf("GOMEMLIMIT %s must lie between --max-memory %s and the limit %s", v, humanize.IBytes(maxMem), limit)
			}
		}
	})

	t.Run("rolling update", func(t *testing.T) {
		// The update strategy is what makes a rollout a rolling restart
		// without client-visible errors (internal/e2e rolling_test.go rolls
		// real processes the same way): one pod at a time, the next only
		// once the previous is Ready.
		us := sts.Spec.UpdateStrategy
		if us.Type != appsv1.RollingUpdateStatefulSetStrategyType {
			t.Fatalf("updateStrategy %q, want RollingUpdate: OnDelete leaves a rollout to hand-deleted pods, in any number at once", us.Type)
		}
		ru := us.RollingUpdate
		if ru == nil || ru.Partition == nil {
			t.Fatalf("updateStrategy.rollingUpdate.partition unset: state it (0) so that a canary is a one-field change")
		}
		if *ru.Partition != 0 {
			t.Errorf("rollingUpdate.partition %d: the base must update every pod; a canary raises it in an overlay", *ru.Partition)
		}
		if ru.MaxUnavailable != nil && ru.MaxUnavailable.String() != "1" {
			t.Errorf("rollingUpdate.maxUnavailable %v: two nodes down at once can take a key's owner and its write-behind replica together", ru.MaxUnavailable)
		}
		// Ready means joined, routing by the cluster's table and warmed
		// (or the warm's budget spent): the next pod goes down only then,
		// and only after minReadySeconds more, long enough for a readiness
		// probe to see the pod fall back should it fail right away.
		if c.ReadinessProbe == nil || c.ReadinessProbe.GRPC == nil {
			t.Fatalf("the readiness probe must ask the gRPC health service, which waits for the join, the table and the warm")
		}
		if sts.Spec.MinReadySeconds < c.ReadinessProbe.PeriodSeconds {
			t.Errorf("minReadySeconds %d < readiness period %ds: the next pod may go down before a failing node is seen unready", sts.Spec.MinReadySeconds, c.ReadinessProbe.PeriodSeconds)
		}
		// The startup probe must outlast the join and the warm.
		boot, err := time.ParseDuration(flag("bootstrap-timeout"))
		if err != nil {
			t.Fatal(err)
		}
		budget, err := time.ParseDuration(flag("prewarm-budget"))
		if err != nil {
			t.Fatal(err)
		}
		if sp := c.StartupProbe; sp == nil || time.Duration(sp.PeriodSeconds*sp.FailureThreshold)*time.Second <= boot+budget {
			t.Errorf("the startup probe must allow more than --bootstrap-timeout %v + --prewarm-budget %v", boot, budget)
		}
		// The disruption budget lets an eviction take only a Ready pod
		// while every other one is Ready: the rollout and a node drain
		// never have two nodes down between them.
		if len(m.pdbs) != 1 || m.pdbs[0].Spec.MaxUnavailable == nil || m.pdbs[0].Spec.MaxUnavailable.String() != "1" {
			t.Errorf("want one PodDisruptionBudget with maxUnavailable 1 beside the rolling update")
		}
	})

	t.Run("disruption budget and spreading", func(t *testing.T) {
		if len(m.pdbs) != 1 {
			t.Fatalf("want 1 PodDisruptionBudget, got %d", len(m.pdbs))
		}
		pdb := m.pdbs[0]
		if !selects(t, pdb.Spec.Selector, podLabels) {
			t.Errorf("PDB %s does not select the StatefulSet's pods (%v)", pdb.Name, podLabels)
		}
		if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != "1" || pdb.Spec.MinAvailable != nil {
			t.Errorf("PDB %s: want maxUnavailable 1 only, got maxUnavailable %v minAvailable %v", pdb.Name, pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
		}
		aa := pod.Affinity
		if aa == nil || aa.PodAntiAffinity == nil || !slices.ContainsFunc(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, func(w corev1.WeightedPodAffinityTerm) bool {
			return w.PodAffinityTerm.TopologyKey == corev1.LabelHostname && selects(t, w.PodAffinityTerm.LabelSelector, podLabels)
		}) {
			t.Errorf("want a preferred podAntiAffinity on %s selecting the ringcache pods", corev1.LabelHostname)
		}
	})

	t.Run("labels", func(t *testing.T) {
		for key, meta := range m.metas {
			if meta.Labels[appLabel] != appName {
				t.Errorf("%s: label %s=%q, want %q", key, appLabel, meta.Labels[appLabel], appName)
			}
		}
		if podLabels[appLabel] != appName {
			t.Errorf("pod template: label %s=%q, want %q", appLabel, podLabels[appLabel], appName)
		}
	})
}

// TestGossipKeyOverlay renders the overlay README.md shows for the gossip key
// and checks that it replaces the placeholder under the name the pods mount.
func TestGossipKeyOverlay(t *testing.T) {
	root := repoRoot(t)
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(root, "deploy", "k8s")) // kustomize refuses absolute paths
	if err != nil {
		t.Skipf("no relative path from %s to the base: %v", dir, err)
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n"
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("gossip.key", key)
	write("kustomization.yaml", fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: cache
resources:
  - %s
secretGenerator:
  - name: ringcache-gossip
    behavior: replace
    files: [key=gossip.key]
    options: {disableNameSuffixHash: true}
`, filepath.ToSlash(base)))
	m := decode(t, kustomize(t, dir))
	sts, c := ringcacheNode(t, m)
	flag := parseFlags(t, c)
	name, item := mountedObject(t, &sts.Spec.Template.Spec, c, flag("gossip-key-file"), func(v corev1.Volume) (string, []corev1.KeyToPath, bool) {
		if v.Secret == nil {
			return "", nil, false
		}
		return v.Secret.SecretName, v.Secret.Items, true
	})
	s, ok := m.secrets[name]
	if !ok {
		t.Fatalf("the pods mount Secret %q, which the overlay does not render", name)
	}
	if got := string(s.Data[item]); got != key || !validGossipKey(s.Data[item]) || len(s.StringData) != 0 {
		t.Errorf("Secret %s: key %q (stringData %v), want the overlay's key %q", name, got, s.StringData, key)
	}
	if sts.Namespace != "cache" {
		t.Errorf("overlay namespace not applied: %q", sts.Namespace)
	}
}

// mountedObject finds the volume mounted at the directory of path, which
// must be one whose source getSource recognises; it returns the source's
// object name and the key mapped to the file.
func mountedObject(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, path string,
	getSource func(corev1.Volume) (name string, items []corev1.KeyToPath, ok bool),
) (string, string) {
	t.Helper()
	path = filepath.Clean(path)
	for _, vm := range c.VolumeMounts {
		rel, err := filepath.Rel(filepath.Clean(vm.MountPath), path)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			continue
		}
		if vm.SubPath != "" {
			t.Errorf("%s is mounted with subPath: updates to the object would never reach the pod", path)
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name {
				continue
			}
			name, items, ok := getSource(v)
			if !ok {
				t.Fatalf("%s lies in volume %s, which has the wrong kind of source", path, v.Name)
			}
			if !vm.ReadOnly {
				t.Errorf("volume %s mounted read-write; mount it readOnly", v.Name)
			}
			if len(items) == 0 {
				return name, rel
			}
			for _, it := range items {
				if it.Path == rel {
					return name, it.Key
				}
			}
			t.Fatalf("volume %s maps no key to %s", v.Name, rel)
		}
		t.Fatalf("volume mount %s names no pod volume", vm.Name)
	}
	t.Fatalf("nothing is mounted at %s", filepath.Dir(path))
	return "", ""
}

// commentedExample extracts the commented-out YAML of the block between the
// "# --- PostgreSQL example" and "# --- end" lines (from its "# backends:"
// line on; the prose above it stays out) and uncomments it.
func commentedExample(t *testing.T, doc string) string {
	t.Helper()
	var out strings.Builder
	inBlock, inYAML := false, false
	for line := range strings.Lines(doc) {
		switch {
		case strings.HasPrefix(line, "# --- PostgreSQL example"):
			inBlock = true
		case strings.HasPrefix(line, "# --- end"):
			inBlock, inYAML = false, false
		case inBlock:
			body, ok := strings.CutPrefix(line, "# ")
			inYAML = inYAML || ok && strings.HasPrefix(body, "backends:")
			if inYAML {
				if !ok {
					t.Fatalf("line %q inside the commented example is not commented YAML", line)
				}
				out.WriteString(body)
			}
		}
	}
	if out.Len() == 0 {
		t.Fatalf("no commented PostgreSQL example (from '# backends:') between '# --- PostgreSQL example' and '# --- end'")
	}
	return out.String()
}

// checkSQLitePaths fails when a namespace uses a SQLite file outside the data
// dir: the root filesystem is read-only and the rest is lost on restart.
func checkSQLitePaths(t *testing.T, f *config.File, dataDir string) {
	t.Helper()
	for name, ns := range f.Namespaces {
		if !ns.NeedsBackend() {
			continue
		}
		b := f.Backends[ns.Backend]
		if b.Driver != "sqlite" {
			continue
		}
		if rel, err := filepath.Rel(dataDir, filepath.Clean(b.Path)); err != nil || strings.HasPrefix(rel, "..") || !filepath.IsAbs(b.Path) {
			t.Errorf("namespaces.%s uses SQLite file %q outside --data-dir %s", name, b.Path, dataDir)
		}
	}
}

// validGossipKey mirrors ringcached's --gossip-key-file rules: 16, 24 or 32
// bytes, raw or base64.
func validGossipKey(b []byte) bool {
	ok := func(n int) bool { return n == 16 || n == 24 || n == 32 }
	if dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil && ok(len(dec)) {
		return true
	}
	return ok(len(b))
}
