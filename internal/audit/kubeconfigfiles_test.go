package audit_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kubepki/kubepki/internal/certgen"
)

// TestKubeconfigFilesOutsideUsualPlaces writes a node whose kubelet
// kubeconfig names files in the usual places, then a personal kubeconfig
// naming its certificate and key in /tmp and its CA through a link, beside
// it, to another home: each file outside is reported with the field naming
// it.
func TestKubeconfigFilesOutsideUsualPlaces(t *testing.T) {
	root := t.TempDir()
	ca := issue(t, certgen.Spec{CommonName: "kubernetes", CA: true, NotAfter: now.AddDate(10, 0, 0)}, nil)
	kubelet := issue(t, certgen.Spec{CommonName: "system:node:worker-1", Organization: []string{"system:nodes"}, Client: true}, ca)
	alice := issue(t, certgen.Spec{CommonName: "alice", Client: true}, ca)
	for _, w := range []struct {
		p         *certgen.Pair
		cert, key string
	}{
		{ca, "etc/kubernetes/pki/ca.crt", ""},
		{kubelet, "var/lib/kubelet/pki/kubelet-client.crt", "var/lib/kubelet/pki/kubelet-client.key"},
		{alice, "tmp/alice.crt", "tmp/alice.key"},
		{ca, "home/bob/ca.crt", ""},
	} {
		key := ""
		if w.key != "" {
			key = filepath.Join(root, w.key)
		}
		if err := w.p.WriteFiles(filepath.Join(root, w.cert), key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := certgen.Kubeconfig{Cluster: "kubernetes", Server: "https://192.0.2.10:6443", CAFile: "/etc/kubernetes/pki/ca.crt",
		User: "default-auth", CertFile: "/var/lib/kubelet/pki/kubelet-client.crt", KeyFile: "/var/lib/kubelet/pki/kubelet-client.key"}
	if err := kc.Write(filepath.Join(root, "etc/kubernetes/kubelet.conf"), 0o600); err != nil {
		t.Fatal(err)
	}
	const check = "kubeconfig-files-outside-usual-places"
	r := auditAt(t, root, now)
	if !has(r, check, "pass", "") || failing(r, check, "") {
		t.Errorf("files in the usual places: want pass, got:%s", dump(r, check))
	}

	personal := certgen.Kubeconfig{Cluster: "kubernetes", Server: "https://192.0.2.10:6443", CAFile: "/root/.kube/ca.crt",
		User: "alice", CertFile: "/tmp/alice.crt", KeyFile: "/tmp/alice.key"}
	if err := personal.Write(filepath.Join(root, "root/.kube/config"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/home/bob/ca.crt", filepath.Join(root, "root/.kube/ca.crt")); err != nil {
		t.Fatal(err)
	}
	r = auditAt(t, root, now)
	for _, where := range []string{"/tmp/alice.crt", "/tmp/alice.key", "a link to /home/bob/ca.crt"} {
		if !failing(r, check, where) {
			t.Errorf("want a warning naming %s, got:%s", where, dump(r, check))
		}
	}
	for _, f := range findings(r, check) {
		if f.Location.Path == "/etc/kubernetes/kubelet.conf" {
			t.Errorf("the kubelet's kubeconfig names its files in the usual places: %s", f.Message)
		}
	}
}
