package audit_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

const pki = "etc/kubernetes/pki/"

// loadCA reads a CA that the real kubeadm wrote, to issue from it.
func loadCA(t *testing.T, root, name string) *certgen.Pair {
	t.Helper()
	ca, err := certgen.Load(filepath.Join(root, pki, name+".crt"), filepath.Join(root, pki, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, spec certgen.Spec, ca *certgen.Pair) *certgen.Pair {
	t.Helper()
	if spec.NotBefore.IsZero() {
		spec.NotBefore = now.Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = now.AddDate(1, 0, 0)
	}
	p, err := certgen.New(spec, ca)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// replace swaps a kubeadm certificate and key for p, and returns the undo.
func replace(t *testing.T, root, name string, p *certgen.Pair) func() {
	t.Helper()
	crt, key := filepath.Join(root, pki, name+".crt"), filepath.Join(root, pki, name+".key")
	oldCrt, err := os.ReadFile(crt)
	if err != nil {
		t.Fatal(err)
	}
	oldKey, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFiles(crt, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(crt, oldCrt, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, oldKey, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIssuedWeaknesses plants certificates issued by the real kubeadm CAs,
// one weakness at a time, and expects the finding to appear, then to go
// away when the kubeadm file is put back.
func TestIssuedWeaknesses(t *testing.T) {
	root := testbed.ControlPlane(t)
	ca, etcdCA, fpCA := loadCA(t, root, "ca"), loadCA(t, root, "etcd/ca"), loadCA(t, root, "front-proxy-ca")
	tests := []mutation{
		{"personal system:masters kubeconfig", "kubeconfig-system-masters", "/home/alice/.kube/config", func(t *testing.T, root string) func() {
			alice := issue(t, certgen.Spec{CommonName: "alice", Organization: []string{"system:masters"}, Client: true, Key: certgen.ECDSAP256}, ca)
			kc := certgen.Kubeconfig{Cluster: "kubernetes", Server: "https://" + testbed.AdvertiseAddress + ":6443", CA: ca, User: "alice", Client: alice}
			p := filepath.Join(root, "home/alice/.kube/config")
			if err := kc.Write(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return func() { os.RemoveAll(filepath.Join(root, "home")) }
		}},
		{"RSA-1024 key", "cert-weak-key", "apiserver-kubelet-client.crt", func(t *testing.T, root string) func() {
			return replace(t, root, "apiserver-kubelet-client", issue(t, certgen.Spec{
				CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}, Client: true, Key: certgen.RSA1024}, ca))
		}},
		{"SHA-1 signature", "cert-weak-signature", "front-proxy-client.crt", func(t *testing.T, root string) func() {
			return replace(t, root, "front-proxy-client", issue(t, certgen.Spec{
				CommonName: "front-proxy-client", Client: true, SignatureAlgorithm: x509.SHA1WithRSA}, fpCA))
		}},
		{"leaf not signed by the CA its flag names", "cert-chain", "apiserver-etcd-client.crt", func(t *testing.T, root string) func() {
			// Issued by the cluster CA, while --etcd-cafile names the etcd CA.
			return replace(t, root, "apiserver-etcd-client", issue(t, certgen.Spec{CommonName: "kube-apiserver-etcd-client", Client: true}, ca))
		}},
		{"replaced leaf expiring in 10 days", "cert-expiry", "etcd/server.crt", func(t *testing.T, root string) func() {
			return replace(t, root, "etcd/server", issue(t, certgen.Spec{
				CommonName: testbed.NodeName, Server: true, Client: true, DNSNames: []string{"localhost", testbed.NodeName},
				NotBefore: now.AddDate(-1, 0, 10), NotAfter: now.AddDate(0, 0, 10)}, etcdCA))
		}},
		{"replaced leaf expired", "cert-expiry", "apiserver.crt", func(t *testing.T, root string) func() {
			return replace(t, root, "apiserver", issue(t, certgen.Spec{
				CommonName: "kube-apiserver", Server: true, DNSNames: []string{"kubernetes"},
				NotBefore: now.AddDate(-1, 0, -1), NotAfter: now.AddDate(0, 0, -1)}, ca))
		}},
		{"renewed certificate reusing another's key", "key-reuse", "apiserver-kubelet-client.crt", func(t *testing.T, root string) func() {
			apiserver, err := certgen.Load(filepath.Join(root, pki, "apiserver.crt"), filepath.Join(root, pki, "apiserver.key"))
			if err != nil {
				t.Fatal(err)
			}
			return replace(t, root, "apiserver-kubelet-client", issue(t, certgen.Spec{
				CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}, Client: true, Signer: apiserver.Key}, ca))
		}},
		{"leaf valid for ten years", "cert-validity-period", "front-proxy-client.crt", func(t *testing.T, root string) func() {
			return replace(t, root, "front-proxy-client", issue(t, certgen.Spec{
				CommonName: "front-proxy-client", Client: true, NotAfter: now.AddDate(10, 0, 0)}, fpCA))
		}},
	}
	applyOneByOne(t, root, tests)
}

// TestWorkerKubeletPKI audits a kubeadm worker whose kubelet has run for a
// while: it bootstrapped a client certificate, rotated it once and left
// the old one behind, and serves with the self-signed certificate the
// kubelet makes when serverTLSBootstrap is off.
func TestWorkerKubeletPKI(t *testing.T) {
	cp := testbed.ControlPlane(t)
	ca := loadCA(t, cp, "ca")
	root := testbed.Worker(t)
	dir := filepath.Join(root, "var/lib/kubelet/pki")
	node := "system:node:" + testbed.NodeName

	writeClient := func(notBefore time.Time) string {
		p := issue(t, certgen.Spec{CommonName: node, Organization: []string{"system:nodes"}, Client: true, Key: certgen.ECDSAP256,
			NotBefore: notBefore, NotAfter: notBefore.AddDate(1, 0, 0)}, ca)
		data, err := p.CombinedPEM()
		if err != nil {
			t.Fatal(err)
		}
		name := "kubelet-client-" + notBefore.UTC().Format("2006-01-02-15-04-05") + ".pem"
		if err := certgen.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		return name
	}
	current := writeClient(now.AddDate(0, -1, 0))
	if err := os.Symlink("/var/lib/kubelet/pki/"+current, filepath.Join(dir, "kubelet-client-current.pem")); err != nil {
		t.Fatal(err)
	}

	// After the TLS bootstrap, the kubelet's kubeconfig points at the
	// rotating certificate instead of embedding one.
	kc := certgen.Kubeconfig{Cluster: "kubernetes", Server: "https://" + testbed.AdvertiseAddress + ":6443", CAFile: "/etc/kubernetes/pki/ca.crt",
		User: "default-auth", CertFile: "/var/lib/kubelet/pki/kubelet-client-current.pem", KeyFile: "/var/lib/kubelet/pki/kubelet-client-current.pem"}
	if err := kc.Write(filepath.Join(root, "etc/kubernetes/kubelet.conf"), 0o600); err != nil {
		t.Fatal(err)
	}

	r := auditAt(t, root, now)
	if got := r.Targets[0].Roles; len(got) != 1 || got[0] != "worker" {
		t.Errorf("roles = %v, want [worker]", got)
	}
	for _, f := range r.Findings {
		if f.Status == report.StatusError {
			t.Errorf("clean worker: %s %s: %s", f.Check, f.Location, f.Message)
		}
	}
	if !has(r, "kubelet-rotated-client-certificates", report.StatusPass, "") {
		t.Errorf("one current client certificate: want pass, got:%s", dump(r, "kubelet-rotated-client-certificates"))
	}
	// The kubelet's client certificate is found through kubelet.conf and
	// the absolute symlink, resolved inside the node, and linked to the
	// cluster CA.
	found := false
	for _, c := range r.Certificates {
		found = found || (c.Path == "/var/lib/kubelet/pki/"+current && c.User == node &&
			c.IssuerPath == "/etc/kubernetes/pki/ca.crt" && len(c.UsedBy) > 0)
	}
	if !found {
		t.Errorf("the kubelet client certificate behind kubelet-client-current.pem is not in the inventory, used by kubelet.conf and linked to the cluster CA")
		for _, c := range r.Certificates {
			t.Logf("%s %s user=%s issuer=%s usedBy=%v", c.Path, c.Source, c.User, c.IssuerPath, c.UsedBy)
		}
	}

	// The old certificate left behind, and the self-signed serving one.
	old := writeClient(now.AddDate(-1, -2, 0))
	// As the kubelet does without serverTLSBootstrap: a throwaway CA signs
	// the serving certificate, and kubelet.crt holds both.
	servingCA := issue(t, certgen.Spec{CommonName: testbed.NodeName + "-ca@1700000000", CA: true}, nil)
	serving := issue(t, certgen.Spec{CommonName: testbed.NodeName + "@1700000000", Server: true, DNSNames: []string{testbed.NodeName}}, servingCA)
	if err := serving.WriteFiles(filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := certgen.WriteFile(filepath.Join(dir, "kubelet.crt"), append(serving.CertPEM(), servingCA.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	r = auditAt(t, root, now)
	if !has(r, "kubelet-rotated-client-certificates", report.StatusWarn, old) && !has(r, "kubelet-rotated-client-certificates", report.StatusFail, old) {
		t.Errorf("want the old client certificate %s reported, got:%s", old, dump(r, "kubelet-rotated-client-certificates"))
	}
	if failingAt(r, "kubelet-rotated-client-certificates", "/var/lib/kubelet/pki/"+current) {
		t.Errorf("the current client certificate must not be reported as old:%s", dump(r, "kubelet-rotated-client-certificates"))
	}
	if !failing(r, "kubelet-serving-certificate", "/var/lib/kubelet/pki/kubelet.crt") {
		t.Errorf("want the self-signed kubelet.crt reported, got:%s", dump(r, "kubelet-serving-certificate"))
	}
}

// failingAt reports whether check fails or warns at exactly path.
func failingAt(r *report.Report, check, path string) bool {
	for _, f := range findings(r, check) {
		if f.Failing() && f.Location.Path == path {
			return true
		}
	}
	return false
}
