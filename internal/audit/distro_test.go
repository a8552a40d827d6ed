package audit_test

import (
	"path/filepath"
	"testing"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/report"
)

// writeRancherServer writes the PKI and kubeconfigs of a k3s or RKE2 server
// node (dist is "k3s" or "rke2"), with their file names, subjects and modes:
// separate client, server and request-header CAs, the system:admin client
// certificate in system:masters, and the kubelet's certificates under agent/.
func writeRancherServer(t *testing.T, root, dist string) {
	t.Helper()
	lib := filepath.Join(root, "var/lib/rancher", dist)
	tls := filepath.Join(lib, "server/tls")
	write := func(p *certgen.Pair, dir, name string) {
		if err := p.WriteFiles(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ca := func(cn string) *certgen.Pair {
		return issue(t, certgen.Spec{CommonName: cn, CA: true, Key: certgen.ECDSAP256, NotAfter: now.AddDate(10, 0, 0)}, nil)
	}
	clientCA, serverCA, rhCA := ca(dist+"-client-ca@1700000000"), ca(dist+"-server-ca@1700000000"), ca(dist+"-request-header-ca@1700000000")
	write(clientCA, tls, "client-ca")
	write(serverCA, tls, "server-ca")
	write(rhCA, tls, "request-header-ca")
	etcdCA := ca("etcd-server-ca@1700000000")
	write(etcdCA, filepath.Join(tls, "etcd"), "server-ca")

	admin := issue(t, certgen.Spec{CommonName: "system:admin", Organization: []string{"system:masters"}, Client: true, Key: certgen.ECDSAP256}, clientCA)
	write(admin, tls, "client-admin")
	write(issue(t, certgen.Spec{CommonName: "kube-apiserver", Server: true, Key: certgen.ECDSAP256, DNSNames: []string{"kubernetes", "localhost"}}, serverCA), tls, "serving-kube-apiserver")
	write(issue(t, certgen.Spec{CommonName: "system:kube-controller-manager", Client: true, Key: certgen.ECDSAP256}, clientCA), tls, "client-controller")

	agent := filepath.Join(lib, "agent")
	write(issue(t, certgen.Spec{CommonName: "system:node:server-1", Organization: []string{"system:nodes"}, Client: true, Key: certgen.ECDSAP256}, clientCA), agent, "client-kubelet")
	write(issue(t, certgen.Spec{CommonName: "server-1", Server: true, Key: certgen.ECDSAP256, DNSNames: []string{"server-1"}}, serverCA), agent, "serving-kubelet")

	server := "https://127.0.0.1:6443"
	if dist == "rke2" {
		server = "https://127.0.0.1:9345"
	}
	// The admin kubeconfig the installer leaves for people, with the
	// system:masters certificate embedded.
	kc := certgen.Kubeconfig{Cluster: "default", Server: server, CA: serverCA, User: "default", Client: admin}
	if err := kc.Write(filepath.Join(root, "etc/rancher", dist, dist+".yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server's own kubeconfigs name the files instead.
	cred := certgen.Kubeconfig{Cluster: "local", Server: server, CAFile: filepath.Join("/var/lib/rancher", dist, "server/tls/server-ca.crt"), User: "user",
		CertFile: filepath.Join("/var/lib/rancher", dist, "server/tls/client-admin.crt"), KeyFile: filepath.Join("/var/lib/rancher", dist, "server/tls/client-admin.key")}
	if err := cred.Write(filepath.Join(lib, "server/cred/admin.kubeconfig"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRancherLayouts audits k3s and RKE2 server nodes from their files:
// certificates, keys and kubeconfigs are inventoried and judged; settings
// their files do not show are notEvaluated with the reason.
func TestRancherLayouts(t *testing.T) {
	for _, dist := range []string{"k3s", "rke2"} {
		t.Run(dist, func(t *testing.T) {
			root := t.TempDir()
			writeRancherServer(t, root, dist)
			r := auditAt(t, root, now)
			if got := r.Targets[0].Distribution; got != dist {
				t.Errorf("distribution = %q, want %q", got, dist)
			}
			for _, f := range r.Findings {
				if f.Status == report.StatusError {
					t.Errorf("%s %s: %s", f.Check, f.Location, f.Message)
				}
			}
			lib := "/var/lib/rancher/" + dist
			want := map[string]bool{
				lib + "/server/tls/client-ca.crt":              false,
				lib + "/server/tls/server-ca.crt":              false,
				lib + "/server/tls/request-header-ca.crt":      false,
				lib + "/server/tls/etcd/server-ca.crt":         false,
				lib + "/server/tls/client-admin.crt":           false,
				lib + "/server/tls/serving-kube-apiserver.crt": false,
				lib + "/agent/client-kubelet.crt":              false,
				lib + "/agent/serving-kubelet.crt":             false,
				"/etc/rancher/" + dist + "/" + dist + ".yaml":  false,
			}
			for _, c := range r.Certificates {
				if _, ok := want[c.Path]; ok {
					want[c.Path] = true
				}
				if c.Path == lib+"/server/tls/client-admin.crt" {
					if !c.SystemMasters || c.KeyPath != lib+"/server/tls/client-admin.key" || c.IssuerPath != lib+"/server/tls/client-ca.crt" {
						t.Errorf("client-admin.crt = %+v, want system:masters with its key, issued by client-ca.crt", c)
					}
				}
			}
			for p, seen := range want {
				if !seen {
					t.Errorf("%s missing from the inventory", p)
				}
			}
			for _, w := range []struct{ check, where string }{
				{"kubeconfig-system-masters", "/etc/rancher/" + dist + "/" + dist + ".yaml"},
				{"ca-key-on-node", lib + "/server/tls/client-ca.key"},
			} {
				if !failing(r, w.check, w.where) {
					t.Errorf("want %s to fail at %s, got:%s", w.check, w.where, dump(r, w.check))
				}
			}
			// No static pod manifest shows the apiserver's flags here.
			for _, f := range findings(r, "apiserver-anonymous-auth") {
				if f.Status != report.StatusNotEvaluated || f.Message == "" {
					t.Errorf("apiserver-anonymous-auth: want notEvaluated with a reason, got %s: %s", f.Status, f.Message)
				}
			}
			if dist == "k3s" && !has(r, "apiserver-anonymous-auth", report.StatusNotEvaluated, "k3s") {
				t.Errorf("k3s: the reason should say that k3s runs the apiserver in-process:%s", dump(r, "apiserver-anonymous-auth"))
			}
			if len(findings(r, "apiserver-anonymous-auth")) == 0 {
				t.Errorf("apiserver-anonymous-auth reported nothing")
			}
		})
	}
}
