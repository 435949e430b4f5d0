package k8s

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// The TLS overlay's changes to the base, and nothing more: everything TestBase
// checks of the base (disruption budget, rolling update, grace period,
// security context, volumes, memory, labels) then holds for the overlay too.
var (
	// flags the overlay removes from the base's args, and adds to them;
	// advertise-grpc-addr is replaced (checked by TestTLSOverlay).
	tlsDroppedFlags = []string{"insecure", "advertise-grpc-addr"}
	tlsAddedFlags   = []string{"tls-cert", "tls-key", "tls-client-ca", "audit-log", "advertise-grpc-addr"}
	// volumes the overlay adds (and mounts).
	tlsVolumes = []string{"tls", "auth"}
)

// generatedSuffix is the content hash kustomize appends to generated names.
var generatedSuffix = regexp.MustCompile(`-[a-z0-9]{10}$`)

// checkOnlyTLSChanged fails when overlay differs from base in anything but
// the TLS overlay's changes.
func checkOnlyTLSChanged(t *testing.T, base, overlay *manifests) {
	t.Helper()
	unhash := func(metas map[string]struct{}) []string {
		var out []string
		for k := range metas {
			if strings.HasPrefix(k, "ConfigMap/") {
				k = generatedSuffix.ReplaceAllString(k, "")
			}
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	keys := func(m *manifests) map[string]struct{} {
		out := map[string]struct{}{}
		for k := range m.metas {
			out[k] = struct{}{}
		}
		return out
	}
	if b, o := unhash(keys(base)), unhash(keys(overlay)); !slices.Equal(b, o) {
		t.Errorf("the overlay renders other objects than the base:\nbase    %v\noverlay %v", b, o)
	}

	bs, bc := ringcacheNode(t, base)
	ov, oc := ringcacheNode(t, overlay)
	bs, ov = bs.DeepCopy(), ov.DeepCopy()
	bc, oc = &bs.Spec.Template.Spec.Containers[0], &ov.Spec.Template.Spec.Containers[0]

	without := func(args []string, flags []string) []string {
		return slices.DeleteFunc(slices.Clone(args), func(a string) bool {
			name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			return slices.Contains(flags, name)
		})
	}
	if b, o := without(bc.Args, tlsDroppedFlags), without(oc.Args, tlsAddedFlags); !slices.Equal(b, o) {
		t.Errorf("the overlay changes other flags than %v → %v:\n%s", tlsDroppedFlags, tlsAddedFlags, cmp.Diff(b, o))
	}
	oc.Args = bc.Args

	// Probes: a new handler, the base's timing.
	for _, p := range []struct{ b, o **corev1.Probe }{{&bc.ReadinessProbe, &oc.ReadinessProbe}, {&bc.StartupProbe, &oc.StartupProbe}} {
		if *p.b == nil || *p.o == nil {
			continue
		}
		o := (*p.o).DeepCopy()
		o.ProbeHandler = (*p.b).ProbeHandler
		*p.o = o
	}

	// Volumes: the base's (the config ConfigMap under its new name) and the
	// overlay's, mounted.
	for _, name := range tlsVolumes {
		if !slices.ContainsFunc(ov.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name }) ||
			!slices.ContainsFunc(oc.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.Name == name }) {
			t.Errorf("the overlay does not add and mount volume %s", name)
		}
	}
	ov.Spec.Template.Spec.Volumes = slices.DeleteFunc(ov.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return slices.Contains(tlsVolumes, v.Name) })
	oc.VolumeMounts = slices.DeleteFunc(oc.VolumeMounts, func(vm corev1.VolumeMount) bool { return slices.Contains(tlsVolumes, vm.Name) })
	for _, vs := range [][]corev1.Volume{bs.Spec.Template.Spec.Volumes, ov.Spec.Template.Spec.Volumes} {
		for i := range vs {
			if cm := vs[i].ConfigMap; cm != nil {
				cm.Name = generatedSuffix.ReplaceAllString(cm.Name, "")
			}
		}
	}
	if diff := cmp.Diff(bs, ov); diff != "" {
		t.Errorf("the overlay changes the StatefulSet beyond TLS (-base +overlay):\n%s", diff)
	}

	// Services: the gRPC ports lose appProtocol h2c.
	for name, bsvc := range base.services {
		osvc, ok := overlay.services[name]
		if !ok {
			continue // reported above
		}
		b, o := bsvc.DeepCopy(), osvc.DeepCopy()
		for i := range b.Spec.Ports {
			if b.Spec.Ports[i].Name == "grpc" {
				b.Spec.Ports[i].AppProtocol = nil
			}
		}
		if diff := cmp.Diff(b, o); diff != "" {
			t.Errorf("the overlay changes Service %s beyond its gRPC appProtocol (-base +overlay):\n%s", name, diff)
		}
	}
	for key, meta := range overlay.metas {
		if meta.Labels[appLabel] != appName {
			t.Errorf("%s: label %s=%q, want %q", key, appLabel, meta.Labels[appLabel], appName)
		}
	}
	if diff := cmp.Diff(base.pdbs, overlay.pdbs); diff != "" {
		t.Errorf("the overlay changes the PodDisruptionBudget (-base +overlay):\n%s", diff)
	}
	if diff := cmp.Diff(base.secrets, overlay.secrets); diff != "" {
		t.Errorf("the overlay changes the base's Secrets (-base +overlay):\n%s", diff)
	}
}
