package rotation_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/sources/node"
	"github.com/kubepki/kubepki/internal/testbed"
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEPKI_ROTATE_CHILD") != "" {
		childApply()
	}
	code := m.Run()
	stopBench()
	testbed.Cleanup()
	os.Exit(code)
}

func plan(t *testing.T, ca rotation.CA, roots ...string) *rotation.Plan {
	t.Helper()
	in := rotation.Input{CA: ca, Now: time.Now(), ClusterNote: "not read in this test"}
	for _, r := range roots {
		in.Nodes = append(in.Nodes, node.Read(context.Background(), node.Options{Root: r}))
	}
	return rotation.Build(in)
}

// dependents lists a plan's dependents as "relation change kind location".
func dependents(p *rotation.Plan) []string {
	var out []string
	for _, d := range p.Dependents {
		out = append(out, strings.Join([]string{string(d.Relation), string(d.Change), d.Kind, d.Location.String()}, " | "))
	}
	sort.Strings(out)
	return out
}

// TestPlanKubeadmNode: on the real kubeadm node every dependent of each CA
// is listed, with who changes it, and nothing else.
func TestPlanKubeadmNode(t *testing.T) {
	root := testbed.ControlPlane(t)
	const (
		api  = "/etc/kubernetes/manifests/kube-apiserver.yaml"
		kcm  = "/etc/kubernetes/manifests/kube-controller-manager.yaml"
		etcd = "/etc/kubernetes/manifests/etcd.yaml"
	)
	kubeconfigs := map[string]string{"admin.conf": "kubernetes-admin", "super-admin.conf": "kubernetes-super-admin",
		"controller-manager.conf": "system:kube-controller-manager", "scheduler.conf": "system:kube-scheduler", "kubelet.conf": "system:node:" + testbed.NodeName}
	var cluster []string
	for f, user := range kubeconfigs {
		cluster = append(cluster,
			"trusts | kubepki | kubeconfig-ca | /etc/kubernetes/"+f+" clusters["+testbed.ClusterName+"].certificate-authority-data",
			"signedBy | kubepki | kubeconfig-client-certificate | /etc/kubernetes/"+f+" users["+user+"].client-certificate-data")
	}
	cluster = append(cluster,
		"is | kubepki | ca-certificate | /etc/kubernetes/pki/ca.crt",
		"is | kubepki | ca-key | /etc/kubernetes/pki/ca.key",
		"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/apiserver.crt",
		"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/apiserver-kubelet-client.crt",
		"trusts | component | flag | "+api+" --client-ca-file",
		"trusts | component | flag | "+kcm+" --client-ca-file",
		"trusts | component | flag | "+kcm+" --root-ca-file",
		"is | component | signing-flag | "+kcm+" --cluster-signing-cert-file",
		"trusts | component | kubelet-config | /var/lib/kubelet/config.yaml authentication.x509.clientCAFile",
	)
	want := map[rotation.CA][]string{
		rotation.CACluster: cluster,
		rotation.CAEtcd: {
			"is | kubepki | ca-certificate | /etc/kubernetes/pki/etcd/ca.crt",
			"is | kubepki | ca-key | /etc/kubernetes/pki/etcd/ca.key",
			"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/apiserver-etcd-client.crt",
			"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/etcd/healthcheck-client.crt",
			"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/etcd/peer.crt",
			"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/etcd/server.crt",
			"trusts | component | flag | " + api + " --etcd-cafile",
			"trusts | component | flag | " + etcd + " --trusted-ca-file",
			"trusts | component | flag | " + etcd + " --peer-trusted-ca-file",
		},
		rotation.CAFrontProxy: {
			"is | kubepki | ca-certificate | /etc/kubernetes/pki/front-proxy-ca.crt",
			"is | kubepki | ca-key | /etc/kubernetes/pki/front-proxy-ca.key",
			"signedBy | kubepki | leaf-certificate | /etc/kubernetes/pki/front-proxy-client.crt",
			"trusts | component | flag | " + api + " --requestheader-client-ca-file",
			"trusts | component | flag | " + kcm + " --requestheader-client-ca-file",
		},
		rotation.CAServiceAccount: {
			"is | kubepki | service-account-key | /etc/kubernetes/pki/sa.key",
			"is | component | signing-flag | " + api + " --service-account-signing-key-file",
			"is | component | signing-flag | " + kcm + " --service-account-private-key-file",
			"trusts | component | flag | " + api + " --service-account-key-file",
		},
	}
	for _, ca := range rotation.CAs {
		t.Run(string(ca), func(t *testing.T) {
			p := plan(t, ca, root)
			w := want[ca]
			sort.Strings(w)
			if diff := cmp.Diff(w, dependents(p)); diff != "" {
				t.Errorf("dependents (-want +got):\n%s", diff)
			}
			if !p.Applicable || len(p.Authorities) != 1 {
				t.Errorf("applicable %v, refusals %v, authorities %+v", p.Applicable, p.Refusals, p.Authorities)
			}
			if len(p.Phases) != 5 || p.Phases[0].Name != rotation.PhaseTrustBoth || p.Phases[4].Name != rotation.PhaseVerify {
				t.Fatalf("phases: %+v", p.Phases)
			}
			// What each phase restarts on a control-plane node.
			var restarts [][]string
			for _, ph := range p.Phases {
				var rs []string
				for _, r := range ph.Restart {
					rs = append(rs, r.Component)
				}
				restarts = append(restarts, rs)
			}
			if ca == rotation.CACluster {
				all := []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"}
				if diff := cmp.Diff([][]string{all, all, {"kube-controller-manager"}, all, nil}, restarts); diff != "" {
					t.Errorf("restarts (-want +got):\n%s", diff)
				}
			}
			if len(p.NotEvaluated) != 1 || p.NotEvaluated[0].Reason != "not read in this test" {
				t.Errorf("not evaluated: %+v", p.NotEvaluated)
			}
		})
	}
}

// TestPlanWorkerAndTwoNodes: a worker's kubelet files depend on the cluster
// CA; with both nodes the control plane's actions come first and each
// node restarts its own components.
func TestPlanWorkerAndTwoNodes(t *testing.T) {
	cp, worker := testbed.ControlPlane(t), testbed.Worker(t)
	p := plan(t, rotation.CACluster, worker)
	want := []string{
		"is | kubepki | ca-certificate | /etc/kubernetes/pki/ca.crt",
		"signedBy | kubepki | kubeconfig-client-certificate | /etc/kubernetes/kubelet.conf users[system:node:" + testbed.NodeName + "].client-certificate-data",
		"trusts | component | kubelet-config | /var/lib/kubelet/config.yaml authentication.x509.clientCAFile",
		"trusts | kubepki | kubeconfig-ca | /etc/kubernetes/kubelet.conf clusters[" + testbed.ClusterName + "].certificate-authority-data",
	}
	if diff := cmp.Diff(want, dependents(p)); diff != "" {
		t.Errorf("worker dependents (-want +got):\n%s", diff)
	}
	p = plan(t, rotation.CACluster, worker, cp)
	if len(p.Authorities) != 1 {
		t.Errorf("the two nodes share one CA: %+v", p.Authorities)
	}
	first := p.Phases[0]
	if first.Actions[0].Node != cp {
		t.Errorf("phase 1 starts on %s, want the control-plane node", first.Actions[0].Node)
	}
	var workerRestarts []string
	for _, r := range first.Restart {
		if r.Node == worker {
			workerRestarts = append(workerRestarts, r.Component)
		}
	}
	if diff := cmp.Diff([]string{"kubelet"}, workerRestarts); diff != "" {
		t.Errorf("worker restarts (-want +got):\n%s", diff)
	}
}

// TestPlanRefusesK3s: a k3s node's CAs are listed, but apply is refused
// with the reason.
func TestPlanRefusesK3s(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	ca, err := certgen.New(certgen.Spec{CommonName: "k3s-client-ca", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := certgen.New(certgen.Spec{CommonName: "system:admin", Organization: []string{"system:masters"}, Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ca)
	tls := filepath.Join(root, "var/lib/rancher/k3s/server/tls")
	if err := ca.WriteFiles(filepath.Join(tls, "client-ca.crt"), filepath.Join(tls, "client-ca.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := admin.WriteFiles(filepath.Join(tls, "client-admin.crt"), filepath.Join(tls, "client-admin.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := plan(t, rotation.CACluster, root)
	if p.Applicable || len(p.Refusals) != 1 || !strings.Contains(p.Refusals[0], "k3s certificate rotate-ca") {
		t.Errorf("applicable %v, refusals %q", p.Applicable, p.Refusals)
	}
	// The plan still lists what depends on the CA, for the user to act on.
	want := []string{
		"is | manual | ca-certificate | /var/lib/rancher/k3s/server/tls/client-ca.crt",
		"is | manual | ca-key | /var/lib/rancher/k3s/server/tls/client-ca.key",
		"signedBy | manual | leaf-certificate | /var/lib/rancher/k3s/server/tls/client-admin.crt",
	}
	if diff := cmp.Diff(want, dependents(p)); diff != "" {
		t.Errorf("k3s dependents (-want +got):\n%s", diff)
	}
	for _, ph := range p.Phases {
		for _, a := range ph.Actions {
			if a.By == rotation.ChangeKubepki {
				t.Errorf("phase %s: kubepki would change %s on k3s", ph.Name, a.Location)
			}
		}
	}
}

// TestPlanClusterObjects: cluster objects are sorted into what trusts the
// CA (and who changes it) and what it signed; an expired CSR certificate
// and a bundle of another CA are no dependents; unread resources are not
// evaluated, with the reason.
func TestPlanClusterObjects(t *testing.T) {
	now := time.Now()
	ca, _ := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	other, _ := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, nil)
	leaf := func(cn string, notAfter time.Time) *x509.Certificate {
		p, _ := certgen.New(certgen.Spec{CommonName: cn, Client: true, Key: certgen.ECDSAP256, NotBefore: now.Add(-2 * time.Hour), NotAfter: notAfter}, ca)
		return p.Cert
	}
	ct := &evidence.ClusterTrust{Server: "https://192.0.2.10:6443", Unread: map[string]string{"apiregistration.k8s.io/apiservices": "forbidden: no"}, Objects: []evidence.TrustObject{
		{Object: "ConfigMap/kube-system/extension-apiserver-authentication", Field: "data[client-ca-file]", Kind: evidence.TrustBundle, Certs: []*x509.Certificate{ca.Cert}},
		{Object: "ConfigMap/team-a/kube-root-ca.crt", Field: "data[ca.crt]", Kind: evidence.TrustBundle, Certs: []*x509.Certificate{ca.Cert}},
		{Object: "ConfigMap/kube-public/cluster-info", Field: "data[kubeconfig] clusters[].certificate-authority-data", Kind: evidence.TrustKubeconfigCA, Certs: []*x509.Certificate{ca.Cert}},
		{Object: "CertificateSigningRequest/alice", Field: "status.certificate", Kind: evidence.TrustCert, Certs: []*x509.Certificate{leaf("alice", now.Add(time.Hour))}},
		{Object: "CertificateSigningRequest/bob", Field: "status.certificate", Kind: evidence.TrustCert, Certs: []*x509.Certificate{leaf("bob", now.Add(-time.Minute))}},
		{Object: "Secret/web/tls", Field: "data[tls.crt]", Kind: evidence.TrustCert, Certs: []*x509.Certificate{leaf("web", now.Add(time.Hour))}},
		{Object: "Secret/web/other-ca", Field: "data[ca.crt]", Kind: evidence.TrustBundle, Certs: []*x509.Certificate{other.Cert}},
		{Object: "ClusterTrustBundle/corp", Field: "spec.trustBundle", Kind: evidence.TrustBundle, Certs: []*x509.Certificate{other.Cert, ca.Cert}},
	}}
	p := rotation.Build(rotation.Input{CA: rotation.CACluster, Cluster: ct, Now: now})
	var got []string
	for _, d := range p.Dependents {
		got = append(got, strings.Join([]string{string(d.Relation), string(d.Change), d.Kind, d.Location.String()}, " | "))
	}
	want := []string{
		"signedBy | manual | csr-certificate | CertificateSigningRequest/alice status.certificate",
		"trusts | manual | cluster-trust-bundle | ClusterTrustBundle/corp spec.trustBundle",
		"trusts | component | config-map | ConfigMap/kube-system/extension-apiserver-authentication data[client-ca-file]",
		"trusts | kubepki | config-map | ConfigMap/kube-public/cluster-info data[kubeconfig] clusters[].certificate-authority-data",
		"trusts | component | config-map | ConfigMap/team-a/kube-root-ca.crt data[ca.crt]",
		"signedBy | manual | secret-certificate | Secret/web/tls data[tls.crt]",
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dependents (-want +got):\n%s", diff)
	}
	if len(p.Authorities) != 1 || p.Authorities[0].SHA256 != inventory.Fingerprint(ca.Cert) {
		t.Errorf("authorities from the cluster: %+v", p.Authorities)
	}
	if len(p.NotEvaluated) != 1 || p.NotEvaluated[0].Location.Object != "apiregistration.k8s.io/apiservices" || p.NotEvaluated[0].Reason != "forbidden: no" {
		t.Errorf("not evaluated: %+v", p.NotEvaluated)
	}
	if p.Applicable {
		t.Error("a plan without a node is applicable")
	}
}
