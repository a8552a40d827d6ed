package audit_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sources/probe"
	"github.com/kubepki/kubepki/internal/testbed"
)

// fakeComponent serves what a kubelet, controller-manager or scheduler
// answers: open (everything 200) or closed (401 but /healthz), over TLS
// with the given certificate, or over plain HTTP when cert is nil.
func fakeComponent(t *testing.T, open bool, cert *certgen.Pair) int {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open || r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	})
	srv := httptest.NewUnstartedServer(h)
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Cert.Raw}, PrivateKey: cert.Key, Leaf: cert.Cert}}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func probeReport(t *testing.T, ports map[string]int, ca []*x509.Certificate) *report.Report {
	t.Helper()
	r := audit.Probe(context.Background(), audit.ProbeOptions{
		Hosts: []string{"127.0.0.1"}, Ports: ports, CA: ca, CASource: "ca.crt", Timeout: 2 * time.Second,
		Now: time.Now(), Policy: checks.DefaultPolicy(),
	})
	record(r)
	return r
}

func statusOf(r *report.Report, id string) report.Status {
	fs := findings(r, id)
	if len(fs) == 0 {
		return ""
	}
	worst := fs[0].Status
	for _, f := range fs {
		if f.Failing() {
			worst = f.Status
		}
	}
	return worst
}

// TestProbeRealControlPlane probes the real apiserver and etcd of the test
// bed, and stand-ins for the components no process serves here (a kubelet,
// a controller-manager, a scheduler), first configured well, then badly.
func TestProbeRealControlPlane(t *testing.T) {
	c := testbed.StartCluster(t)
	pki := filepath.Join(c.NodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	goodCert, err := certgen.New(certgen.Spec{CommonName: "cp-1", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	selfCA, err := certgen.New(certgen.Spec{CommonName: "cp-1-ca@1700000000", CA: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	selfCert, err := certgen.New(certgen.Spec{CommonName: "cp-1@1700000000", Server: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, selfCA)
	if err != nil {
		t.Fatal(err)
	}

	good := probeReport(t, map[string]int{
		probe.APIServer: c.Ports.APIServer, probe.Etcd: c.Ports.EtcdClient,
		probe.Kubelet: fakeComponent(t, false, goodCert), probe.KubeletReadOnly: closedPort(t),
		probe.ControllerManager: fakeComponent(t, false, goodCert), probe.Scheduler: fakeComponent(t, false, goodCert),
	}, []*x509.Certificate{ca.Cert})
	for _, id := range []string{"probe-apiserver-anonymous", "probe-etcd-client-certificate", "probe-kubelet-anonymous", "probe-kubelet-read-only-port",
		"probe-controller-manager-anonymous", "probe-scheduler-anonymous", "probe-kubelet-serving-certificate"} {
		if s := statusOf(good, id); s != report.StatusPass {
			t.Errorf("well configured: %s is %s: %+v", id, s, findings(good, id))
		}
	}
	if f := findings(good, "probe-apiserver-anonymous"); len(f) == 0 || !strings.Contains(f[0].Message, "/version") {
		t.Errorf("the real apiserver's anonymous /version is not mentioned: %+v", f)
	}

	// Unauthenticated requests may now list namespaces on the real
	// apiserver; the stand-ins answer everything; etcd's port is a plain
	// HTTP server.
	ctx := context.Background()
	if _, err := c.Admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "ns-lister"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "anonymous-ns"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "ns-lister"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bad := probeReport(t, map[string]int{
		probe.APIServer: c.Ports.APIServer, probe.Etcd: fakeComponent(t, true, nil),
		probe.Kubelet: fakeComponent(t, true, selfCert), probe.KubeletReadOnly: fakeComponent(t, true, nil),
		probe.ControllerManager: fakeComponent(t, true, goodCert), probe.Scheduler: fakeComponent(t, true, goodCert),
	}, []*x509.Certificate{ca.Cert})
	for id, want := range map[string]report.Status{
		"probe-apiserver-anonymous": report.StatusFail, "probe-etcd-client-certificate": report.StatusFail,
		"probe-kubelet-anonymous": report.StatusFail, "probe-kubelet-read-only-port": report.StatusFail,
		"probe-controller-manager-anonymous": report.StatusFail, "probe-scheduler-anonymous": report.StatusFail,
		"probe-kubelet-serving-certificate": report.StatusWarn,
	} {
		if s := statusOf(bad, id); s != want {
			t.Errorf("badly configured: %s is %s, want %s: %+v", id, s, want, findings(bad, id))
		}
	}
	if f := findings(bad, "probe-apiserver-anonymous"); len(f) == 0 || !strings.Contains(f[0].Location.Object, "/api/v1/namespaces") {
		t.Errorf("the anonymous namespace list is not named: %+v", f)
	}

	// Nothing listening is never a pass, but for the read-only port,
	// where closed is the goal.
	none := probeReport(t, map[string]int{probe.APIServer: closedPort(t), probe.Kubelet: closedPort(t), probe.Etcd: closedPort(t)}, nil)
	for _, id := range []string{"probe-apiserver-anonymous", "probe-kubelet-anonymous", "probe-etcd-client-certificate", "probe-kubelet-serving-certificate"} {
		if s := statusOf(none, id); s != report.StatusNotEvaluated {
			t.Errorf("closed port: %s is %s", id, s)
		}
	}
}
