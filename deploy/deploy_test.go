// Package deploy_test checks kubepki's in-cluster manifests: kustomize
// builds them, every workload is locked down, the real apiserver accepts
// every object (schema, admission, Pod Security), each service account can
// do what its workload needs and nothing more, and the binary the
// Dockerfile builds is static.
package deploy_test

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kubepki/kubepki/internal/testbed"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbed.Cleanup()
	os.Exit(code)
}

// build runs kustomize on deploy/, as kubectl apply -k does.
func build(t *testing.T) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), ".")
	if err != nil {
		t.Fatalf("kustomize build deploy/: %v", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func objects(t *testing.T, docs []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for i, doc := range strings.Split(string(docs), "\n---\n") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		if obj != nil {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
	return out
}

func name(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

// workload is a pod template and where it runs.
type workload struct {
	name, namespace string
	labels          map[string]string
	spec            corev1.PodSpec
}

func workloads(t *testing.T, objs []*unstructured.Unstructured) []workload {
	t.Helper()
	var out []workload
	for _, u := range objs {
		var path []string
		switch u.GetKind() {
		case "Deployment", "DaemonSet", "StatefulSet", "Job":
			path = []string{"spec", "template", "spec"}
		case "CronJob":
			path = []string{"spec", "jobTemplate", "spec", "template", "spec"}
		default:
			continue
		}
		raw, ok, err := unstructured.NestedMap(u.Object, path...)
		if err != nil || !ok {
			t.Fatalf("%s: no pod template (%v)", name(u), err)
		}
		var spec corev1.PodSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec); err != nil {
			t.Fatalf("%s: %v", name(u), err)
		}
		podLabels, _, err := unstructured.NestedStringMap(u.Object, append(slices.Clone(path[:len(path)-1]), "metadata", "labels")...)
		if err != nil {
			t.Fatalf("%s: pod template labels: %v", name(u), err)
		}
		out = append(out, workload{name: name(u), namespace: u.GetNamespace(), labels: podLabels, spec: spec})
	}
	return out
}

// TestKustomizeBuildsEverything: deploy/ builds, holds every manifest but
// the two left out on purpose, and points every workload at the image.
func TestKustomizeBuildsEverything(t *testing.T) {
	objs := objects(t, build(t))
	var got []string
	for _, u := range objs {
		got = append(got, name(u))
	}
	for _, want := range []string{
		"Namespace/kubepki", "Namespace/kubepki-node",
		"CustomResourceDefinition/revokedcredentials.kubepki.io",
		"ClusterRole/kubepki-reader", "ClusterRole/kubepki-revoker", "ClusterRole/kubepki-revocation-admin", "ClusterRole/kubepki-revocation-webhook",
		"DaemonSet/kubepki-node/kubepki-node",
		"CronJob/kubepki/kubepki-cluster-audit", "PersistentVolumeClaim/kubepki/kubepki-reports",
		"Deployment/kubepki/kubepki-exporter", "Service/kubepki/kubepki-exporter",
		"Deployment/kubepki/kubepki-revocation-webhook", "PodDisruptionBudget/kubepki/kubepki-revocation-webhook", "Service/kubepki/kubepki-revocation-webhook",
		"CustomResourceDefinition/issuedcredentials.kubepki.io", "ClusterRole/kubepki-ledger", "ClusterRole/kubepki-ledger-reader",
		"Deployment/kubepki/kubepki-ledger", "PodDisruptionBudget/kubepki/kubepki-ledger", "Service/kubepki/kubepki-ledger", "NetworkPolicy/kubepki/kubepki-ledger",
		"NetworkPolicy/kubepki-node/kubepki-node", "NetworkPolicy/kubepki/kubepki-cluster-audit", "NetworkPolicy/kubepki/kubepki-exporter", "NetworkPolicy/kubepki/kubepki-revocation-webhook",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("kustomize build lacks %s (has %v)", want, got)
		}
	}
	for _, u := range objs {
		if u.GetKind() == "ClusterRole" && u.GetName() == "kubepki-secret-metadata" {
			t.Error("rbac-secrets.yaml is opt-in; the default build must not grant Secret reads")
		}
	}
	for _, w := range workloads(t, objs) {
		for _, c := range append(w.spec.InitContainers, w.spec.Containers...) {
			if c.Image != "ghcr.io/kubepki/kubepki:devel" {
				t.Errorf("%s container %s: image %q not set by the kustomization", w.name, c.Name, c.Image)
			}
		}
	}
}

// TestWorkloadsAreLockedDown reads every container's security settings:
// the RuntimeDefault seccomp profile, no privilege, no capability, no
// writable root filesystem, a memory limit; non-root everywhere but the
// node audit, which runs as uid 0 with nothing else, reads the host
// read-only all the way down (recursiveReadOnly Enabled, never
// IfPossible, which falls back to writable submounts), sets its seccomp
// profile on the container too, since its privileged namespace checks
// nothing, and has no API token.
func TestWorkloadsAreLockedDown(t *testing.T) {
	for _, w := range workloads(t, objects(t, build(t))) {
		node := w.namespace == "kubepki-node"
		psc := w.spec.SecurityContext
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: no RuntimeDefault seccomp profile", w.name)
		}
		if w.spec.HostNetwork || w.spec.HostPID || w.spec.HostIPC {
			t.Errorf("%s: shares a host namespace", w.name)
		}
		if !node && (psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot) {
			t.Errorf("%s: runAsNonRoot is not set", w.name)
		}
		if node && (w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken) {
			t.Errorf("%s: the node audit needs no API token, but mounts one", w.name)
		}
		for _, v := range w.spec.Volumes {
			if v.HostPath != nil && !node {
				t.Errorf("%s: hostPath volume %s outside the node audit", w.name, v.Name)
			}
		}
		for _, c := range append(w.spec.InitContainers, w.spec.Containers...) {
			sc := c.SecurityContext
			where := w.name + " container " + c.Name
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			if sc.Privileged != nil && *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: privileged or may escalate", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: writable root filesystem", where)
			}
			if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp profile %s overrides the pod's RuntimeDefault", where, sc.SeccompProfile.Type)
			}
			if node && sc.SeccompProfile == nil {
				t.Errorf("%s: no seccomp profile of its own", where)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %+v, want every one dropped and none added", where, sc.Capabilities)
			}
			if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
				t.Errorf("%s: no memory limit", where)
			}
			for _, m := range c.VolumeMounts {
				if node && !m.ReadOnly {
					t.Errorf("%s: host mount %s is writable", where, m.MountPath)
				}
				if node && (m.RecursiveReadOnly == nil || *m.RecursiveReadOnly != corev1.RecursiveReadOnlyEnabled) {
					t.Errorf("%s: host mount %s has recursiveReadOnly %v, want Enabled", where, m.MountPath, ptrString(m.RecursiveReadOnly))
				}
			}
		}
	}
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return "unset"
	}
	return string(*p)
}

// egressPorts are the TCP ports each long-running workload may open
// connections to, at any address: the kube-apiserver's (443 as the
// kubernetes Service, 6443 where it listens on kubeadm, k3s and RKE2),
// which a NetworkPolicy cannot select; none for the node audit. No DNS:
// the in-cluster client dials the IP in KUBERNETES_SERVICE_HOST.
var egressPorts = map[string][]int32{
	"DaemonSet/kubepki-node/kubepki-node":           nil,
	"CronJob/kubepki/kubepki-cluster-audit":         {443, 6443},
	"Deployment/kubepki/kubepki-exporter":           {443, 6443},
	"Deployment/kubepki/kubepki-revocation-webhook": {443, 6443},
	"Deployment/kubepki/kubepki-ledger":             {443, 6443},
}

func networkPolicies(t *testing.T, objs []*unstructured.Unstructured) []networkingv1.NetworkPolicy {
	t.Helper()
	var out []networkingv1.NetworkPolicy
	for _, u := range objs {
		if u.GetKind() != "NetworkPolicy" {
			continue
		}
		var np networkingv1.NetworkPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &np); err != nil {
			t.Fatalf("%s: %v", name(u), err)
		}
		out = append(out, np)
	}
	return out
}

// checkNetworkPolicies holds each workload of egressPorts to the
// NetworkPolicies of its namespace that select its pods: together they
// isolate it both ways; they admit in, from any source, its containers'
// ports and no other (the apiserver calling the webhook, from the host
// network, and Prometheus, wherever it runs, cannot be selected); they let
// out TCP to egressPorts and nothing else. Every policy selects at least
// one of them, so a mistyped selector is caught rather than protecting
// nothing.
func checkNetworkPolicies(t *testing.T, pols []networkingv1.NetworkPolicy, ws []workload) {
	t.Helper()
	used := map[string]bool{}
	for _, w := range ws {
		want, ok := egressPorts[w.name]
		if !ok {
			continue
		}
		var containerPorts []corev1.ContainerPort
		for _, c := range w.spec.Containers {
			containerPorts = append(containerPorts, c.Ports...)
		}
		// resolve gives a policy port's number: a name is looked up among
		// the containers' ports, as network plugins do.
		resolve := func(p networkingv1.NetworkPolicyPort) int32 {
			if p.Port == nil {
				t.Errorf("%s: a policy port without a number admits every port", w.name)
				return 0
			}
			if p.Port.Type == intstr.Int {
				return p.Port.IntVal
			}
			for _, cp := range containerPorts {
				if cp.Name == p.Port.StrVal {
					return cp.ContainerPort
				}
			}
			t.Errorf("%s: policy port %q names no container port", w.name, p.Port.StrVal)
			return 0
		}
		var isolated []networkingv1.PolicyType
		var in, out []int32
		var np networkingv1.NetworkPolicy
		// tcpPorts resolves a rule's ports, each of which must be a single
		// TCP port.
		tcpPorts := func(ports []networkingv1.NetworkPolicyPort, what string) []int32 {
			var nums []int32
			for _, p := range ports {
				if p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP || p.EndPort != nil {
					t.Errorf("%s: NetworkPolicy %s %s %v, want single TCP ports", w.name, np.Name, what, p)
				}
				nums = append(nums, resolve(p))
			}
			return nums
		}
		for _, np = range pols {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Fatalf("NetworkPolicy %s/%s: %v", np.Namespace, np.Name, err)
			}
			if np.Namespace != w.namespace || !sel.Matches(labels.Set(w.labels)) {
				continue
			}
			used[np.Namespace+"/"+np.Name] = true
			isolated = append(isolated, np.Spec.PolicyTypes...)
			for _, r := range np.Spec.Ingress {
				if len(r.From) > 0 {
					t.Errorf("%s: NetworkPolicy %s admits only some sources; the apiserver and Prometheus cannot be selected", w.name, np.Name)
				}
				if len(r.Ports) == 0 {
					t.Errorf("%s: NetworkPolicy %s admits every port", w.name, np.Name)
				}
				in = append(in, tcpPorts(r.Ports, "admits")...)
			}
			for _, r := range np.Spec.Egress {
				if len(r.Ports) == 0 {
					t.Errorf("%s: NetworkPolicy %s lets out every port", w.name, np.Name)
				}
				out = append(out, tcpPorts(r.Ports, "lets out")...)
			}
		}
		if !slices.Contains(isolated, networkingv1.PolicyTypeIngress) || !slices.Contains(isolated, networkingv1.PolicyTypeEgress) {
			t.Errorf("%s: its NetworkPolicies isolate %v, want both Ingress and Egress", w.name, isolated)
		}
		var serves []int32
		for _, cp := range containerPorts {
			if cp.Protocol != "" && cp.Protocol != corev1.ProtocolTCP {
				t.Errorf("%s: container port %d is %s", w.name, cp.ContainerPort, cp.Protocol)
			}
			serves = append(serves, cp.ContainerPort)
		}
		for _, ports := range [][]int32{in, out, serves} {
			slices.Sort(ports)
		}
		if !slices.Equal(slices.Compact(in), slices.Compact(serves)) {
			t.Errorf("%s: NetworkPolicies admit ports %v, want its container ports %v", w.name, in, serves)
		}
		if !slices.Equal(slices.Compact(out), want) {
			t.Errorf("%s: NetworkPolicies let out ports %v, want %v", w.name, out, want)
		}
	}
	for _, np := range pols {
		if !used[np.Namespace+"/"+np.Name] {
			t.Errorf("NetworkPolicy %s/%s selects no kubepki workload", np.Namespace, np.Name)
		}
	}
}

// TestNetworkPolicies: the node audit, the exporter and the webhook each
// have NetworkPolicies that admit their own ports only and let out only
// what they need (see checkNetworkPolicies).
func TestNetworkPolicies(t *testing.T) {
	objs := objects(t, build(t))
	pols := networkPolicies(t, objs)
	if len(pols) == 0 {
		t.Fatal("the build holds no NetworkPolicy")
	}
	checkNetworkPolicies(t, pols, workloads(t, objs))
}

// TestManifestsOnRealAPIServer applies the whole build, and the opt-in
// Secret RBAC, to a real kube-apiserver: every object must pass its schema
// and admission, and the NetworkPolicies and the node audit's hardening
// must be stored as written. Then each pod template is submitted as a Pod
// (dry run), so Pod Security admission judges it against its namespace's
// enforced level, and each service account's permissions are asked of the
// real authorizer.
func TestManifestsOnRealAPIServer(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	docs := build(t)
	if _, err := testbed.Apply(ctx, c.AdminConfig, docs, testbed.ApplyOptions{}); err != nil {
		t.Fatalf("applying kustomize build deploy/: %v", err)
	}
	// Applying twice changes nothing and fails nothing.
	if _, err := testbed.Apply(ctx, c.AdminConfig, docs, testbed.ApplyOptions{DryRun: true}); err != nil {
		t.Fatalf("re-applying: %v", err)
	}
	secrets, err := os.ReadFile("rbac-secrets.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testbed.Apply(ctx, c.AdminConfig, secrets, testbed.ApplyOptions{DryRun: true}); err != nil {
		t.Fatalf("rbac-secrets.yaml: %v", err)
	}

	ws := workloads(t, objects(t, docs))
	// What the apiserver stored, after its defaults and validation: the
	// NetworkPolicies as the build has them, and the node audit's mount
	// still recursively read-only (an apiserver without the
	// RecursiveReadOnlyMounts feature drops the field without a word).
	var stored []networkingv1.NetworkPolicy
	for _, ns := range []string{"kubepki", "kubepki-node"} {
		list, err := c.Admin.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, list.Items...)
	}
	if len(stored) != len(networkPolicies(t, objects(t, docs))) {
		t.Errorf("the apiserver holds %d NetworkPolicies, the build %d", len(stored), len(networkPolicies(t, objects(t, docs))))
	}
	checkNetworkPolicies(t, stored, ws)
	ds, err := c.Admin.AppsV1().DaemonSets("kubepki-node").Get(ctx, "kubepki-node", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range ds.Spec.Template.Spec.Containers {
		for _, m := range ctr.VolumeMounts {
			if m.RecursiveReadOnly == nil || *m.RecursiveReadOnly != corev1.RecursiveReadOnlyEnabled {
				t.Errorf("stored DaemonSet kubepki-node, mount %s: recursiveReadOnly %s, want Enabled", m.MountPath, ptrString(m.RecursiveReadOnly))
			}
		}
		if sp := ctr.SecurityContext.SeccompProfile; sp == nil || sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("stored DaemonSet kubepki-node, container %s: seccomp profile %v, want RuntimeDefault", ctr.Name, sp)
		}
	}

	for _, w := range ws {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "pss-", Namespace: w.namespace}, Spec: w.spec}
		if _, err := c.Admin.CoreV1().Pods(w.namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("%s: its pod is refused in namespace %s: %v", w.name, w.namespace, err)
		}
	}
	// The enforcement is real: the node audit's pod is refused in the
	// restricted namespace the other workloads share.
	for _, w := range ws {
		if w.namespace != "kubepki-node" {
			continue
		}
		spec := w.spec.DeepCopy()
		spec.ServiceAccountName = "kubepki"
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "pss-", Namespace: "kubepki"}, Spec: *spec}
		_, err := c.Admin.CoreV1().Pods("kubepki").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("the node audit's pod in namespace kubepki: %v, want a PodSecurity refusal", err)
		}
	}

	type ask struct {
		verb, group, resource, namespace string
		allowed                          bool
	}
	for sa, asks := range map[string][]ask{
		// The cluster audit and exporter: lists what it reads, writes nothing.
		"kubepki:kubepki": {
			{"list", "rbac.authorization.k8s.io", "clusterrolebindings", "", true},
			{"list", "", "pods", "", true},
			{"list", "certificates.k8s.io", "certificatesigningrequests", "", true},
			{"watch", "kubepki.io", "issuedcredentials", "", true},
			{"create", "kubepki.io", "issuedcredentials", "", false},
			{"get", "", "secrets", "kube-system", false},
			{"create", "", "pods", "kubepki", false},
			{"update", "rbac.authorization.k8s.io", "clusterroles", "", false},
		},
		// The webhook: reads and watches the revocation list, nothing else.
		"kubepki:kubepki-revocation-webhook": {
			{"watch", "kubepki.io", "revokedcredentials", "", true},
			{"list", "kubepki.io", "revokedcredentials", "", true},
			{"create", "kubepki.io", "revokedcredentials", "", false},
			{"delete", "kubepki.io", "revokedcredentials", "", false},
			{"list", "", "secrets", "", false},
		},
		// The ledger: watches CSRs, creates IssuedCredentials, and may
		// neither change nor delete one, nor touch CSRs.
		"kubepki:kubepki-ledger": {
			{"watch", "certificates.k8s.io", "certificatesigningrequests", "", true},
			{"list", "certificates.k8s.io", "certificatesigningrequests", "", true},
			{"create", "kubepki.io", "issuedcredentials", "", true},
			{"list", "kubepki.io", "issuedcredentials", "", true},
			{"get", "kubepki.io", "issuedcredentials", "", true},
			{"update", "kubepki.io", "issuedcredentials", "", false},
			{"delete", "kubepki.io", "issuedcredentials", "", false},
			{"delete", "certificates.k8s.io", "certificatesigningrequests", "", false},
			{"list", "", "secrets", "", false},
		},
		// The node audit: no API access at all.
		"kubepki-node:kubepki-node": {
			{"list", "", "pods", "", false},
			{"get", "", "nodes", "", false},
		},
	} {
		ns, n, _ := strings.Cut(sa, ":")
		user := "system:serviceaccount:" + ns + ":" + n
		for _, a := range asks {
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace},
			}}
			got, err := c.Admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Allowed != a.allowed {
				t.Errorf("%s %s %s/%s in %q: allowed %v, want %v", user, a.verb, a.group, a.resource, a.namespace, got.Status.Allowed, a.allowed)
			}
		}
	}
}

// TestDockerfileBuildsAStaticBinary builds kubepki as the Dockerfile does
// and checks the result needs no dynamic loader or shared library, so it
// runs on the distroless static base.
func TestDockerfileBuildsAStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0 go build -trimpath", "FROM gcr.io/distroless/static", "USER 65532:65532"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	bin := filepath.Join(t.TempDir(), "kubepki")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "../cmd/kubepki")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "kubepki ") {
		t.Errorf("the static binary does not run: %v %s", err, out)
	}
	fi, _ := os.Stat(bin)
	t.Logf("static binary: %s", fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20)))
}
