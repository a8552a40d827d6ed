package audit_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
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

// standIn is a server on loopback that behaves like a component no real
// process serves here (a kubelet, a scheduler, a read-only port, a badly
// set up etcd).
type standIn struct {
	// open answers 200 to every path; otherwise only /healthz answers and
	// everything else gets 401, as a kubelet with anonymous requests
	// refused does.
	open bool
	// cert is the serving certificate; nil serves plain HTTP.
	cert *certgen.Pair
	// clientAuth and maxVersion set the TLS server's demands.
	clientAuth tls.ClientAuthType
	maxVersion uint16
}

func (s standIn) start(t *testing.T) int {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.open || r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	if s.cert == nil {
		srv.Start()
	} else {
		srv.TLS = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{s.cert.Cert.Raw}, PrivateKey: s.cert.Key, Leaf: s.cert.Cert}},
			ClientAuth:   s.clientAuth,
			MaxVersion:   s.maxVersion,
		}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// tarpit returns a loopback port that accepts connections and never says
// anything.
func tarpit(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// testCerts are the serving certificates of the stand-ins: good ones from
// the cluster CA, and a kubelet's own self-signed kind.
type testCerts struct {
	ca, good, selfSigned *certgen.Pair
}

func newTestCerts(t *testing.T, ca *certgen.Pair) testCerts {
	t.Helper()
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	good, err := certgen.New(certgen.Spec{CommonName: "system:node:cp-1", Server: true, IPs: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: from, NotAfter: to}, ca)
	if err != nil {
		t.Fatal(err)
	}
	// What a kubelet makes for itself without serverTLSBootstrap.
	selfCA, err := certgen.New(certgen.Spec{CommonName: "cp-1-ca@1763900000", CA: true, NotBefore: from, NotAfter: to}, nil)
	if err != nil {
		t.Fatal(err)
	}
	self, err := certgen.New(certgen.Spec{CommonName: "cp-1@1763900000", Server: true, NotBefore: from, NotAfter: to}, selfCA)
	if err != nil {
		t.Fatal(err)
	}
	return testCerts{ca: ca, good: good, selfSigned: self}
}

func probeReport(t *testing.T, ports map[string]int, ca []*x509.Certificate) *report.Report {
	t.Helper()
	r, err := audit.Probe(context.Background(), audit.ProbeOptions{
		Hosts: []string{"127.0.0.1"}, Ports: ports, CA: ca, CASource: "the test's cluster CA",
		Now: time.Now(), Policy: checks.DefaultPolicy(),
	})
	if err != nil {
		t.Fatal(err)
	}
	record(r)
	if len(r.Targets) != 1 || r.Targets[0].Kind != report.TargetProbe || r.Targets[0].Name != "127.0.0.1" {
		t.Errorf("targets: %+v", r.Targets)
	}
	return r
}

// worstOf returns the most alarming status of a check's findings.
func worstOf(r *report.Report, id string) report.Status {
	var worst report.Status
	rank := map[report.Status]int{}
	for i, s := range report.Statuses {
		rank[s] = len(report.Statuses) - i
	}
	for _, f := range findings(r, id) {
		if rank[f.Status] > rank[worst] {
			worst = f.Status
		}
	}
	return worst
}

func expectStatuses(t *testing.T, what string, r *report.Report, want map[string]report.Status) {
	t.Helper()
	for id, s := range want {
		if got := worstOf(r, id); got != s {
			t.Errorf("%s: %s is %q, want %s", what, id, got, s)
			for _, f := range findings(r, id) {
				t.Logf("  %s %q %s", f.Status, f.Location.Object, f.Message)
			}
		}
	}
}

// TestProbeStandIns probes servers on loopback that behave like kubelets,
// schedulers, controller-managers and etcd configured well and badly, a
// port nothing listens on and one that never answers. It needs no root.
func TestProbeStandIns(t *testing.T) {
	ca, err := certgen.New(certgen.Spec{CommonName: "kubernetes", CA: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCerts(t, ca)
	cas := []*x509.Certificate{ca.Cert}
	etcdCert, err := certgen.New(certgen.Spec{CommonName: "etcd", Server: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}

	good := probeReport(t, map[string]int{
		probe.Kubelet:           standIn{cert: c.good, clientAuth: tls.RequestClientCert}.start(t),
		probe.KubeletReadOnly:   closedPort(t),
		probe.ControllerManager: standIn{cert: c.good}.start(t),
		probe.Scheduler:         standIn{cert: c.good}.start(t),
		probe.Etcd:              standIn{cert: etcdCert, clientAuth: tls.RequireAndVerifyClientCert}.start(t),
	}, cas)
	expectStatuses(t, "well configured", good, map[string]report.Status{
		"probe-kubelet-anonymous": report.StatusPass, "probe-kubelet-read-only-port": report.StatusPass,
		"probe-controller-manager-anonymous": report.StatusPass, "probe-scheduler-anonymous": report.StatusPass,
		"probe-etcd-client-certificate": report.StatusPass, "probe-kubelet-serving-certificate": report.StatusPass,
		"probe-apiserver-anonymous": report.StatusNotEvaluated, // not probed
	})
	if f := findings(good, "probe-etcd-client-certificate"); len(f) != 1 || !strings.Contains(f[0].Message, "certificate required") {
		t.Errorf("TLS 1.3 etcd: the refusal on the first read is not recognised: %+v", f)
	}

	// TLS 1.2 refuses a missing client certificate in the handshake.
	etcd12 := probeReport(t, map[string]int{
		probe.Etcd: standIn{cert: etcdCert, clientAuth: tls.RequireAndVerifyClientCert, maxVersion: tls.VersionTLS12}.start(t),
	}, cas)
	expectStatuses(t, "TLS 1.2 etcd", etcd12, map[string]report.Status{"probe-etcd-client-certificate": report.StatusPass})

	bad := probeReport(t, map[string]int{
		probe.Kubelet:           standIn{open: true, cert: c.selfSigned}.start(t),
		probe.KubeletReadOnly:   standIn{open: true}.start(t),
		probe.ControllerManager: standIn{open: true, cert: c.good}.start(t),
		probe.Scheduler:         standIn{open: true, cert: c.good}.start(t),
		probe.Etcd:              standIn{open: true}.start(t), // plain HTTP
	}, cas)
	expectStatuses(t, "badly configured", bad, map[string]report.Status{
		"probe-kubelet-anonymous": report.StatusFail, "probe-kubelet-read-only-port": report.StatusFail,
		"probe-controller-manager-anonymous": report.StatusFail, "probe-scheduler-anonymous": report.StatusFail,
		"probe-etcd-client-certificate": report.StatusFail, "probe-kubelet-serving-certificate": report.StatusWarn,
	})
	if !has(bad, "probe-kubelet-serving-certificate", report.StatusWarn, "self-signed") {
		t.Errorf("the kubelet's self-signed certificate is not named as such: %+v", findings(bad, "probe-kubelet-serving-certificate"))
	}
	for _, f := range findings(bad, "probe-kubelet-anonymous") {
		if f.Status == report.StatusFail && !strings.HasPrefix(f.Location.Object, "127.0.0.1:") {
			t.Errorf("location %q is not host:port path", f.Location.Object)
		}
	}
	if !has(bad, "probe-etcd-client-certificate", report.StatusFail, "plain HTTP") {
		t.Errorf("etcd over plain HTTP is not said: %+v", findings(bad, "probe-etcd-client-certificate"))
	}

	// Nothing listening, or nothing answering, is never a pass (but for
	// the read-only port, where a refused connection is the goal); and a
	// silent port costs no more than its time limit.
	start := time.Now()
	r, err := audit.Probe(context.Background(), audit.ProbeOptions{
		Hosts: []string{"127.0.0.1"}, CA: cas,
		Ports: map[string]int{
			probe.APIServer: closedPort(t), probe.Kubelet: closedPort(t), probe.Etcd: tarpit(t),
			probe.ControllerManager: tarpit(t), probe.Scheduler: closedPort(t),
		},
		ConnectTimeout: 200 * time.Millisecond, PortTimeout: 600 * time.Millisecond,
		Now: time.Now(), Policy: checks.DefaultPolicy(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("probing closed and silent ports took %s", d)
	}
	for _, f := range r.Findings {
		if f.Status != report.StatusNotEvaluated {
			t.Errorf("closed or silent: %s is %s: %s", f.Check, f.Status, f.Message)
		}
	}
	for _, id := range []string{"probe-apiserver-anonymous", "probe-kubelet-anonymous", "probe-scheduler-anonymous", "probe-kubelet-serving-certificate"} {
		if !has(r, id, report.StatusNotEvaluated, "not reachable from here: connection refused") {
			t.Errorf("closed port: %s does not say it is not reachable: %+v", id, findings(r, id))
		}
	}
	if !has(r, "probe-etcd-client-certificate", report.StatusNotEvaluated, "") || !has(r, "probe-kubelet-read-only-port", report.StatusNotEvaluated, "not probed") {
		t.Errorf("silent etcd, or a read-only port not probed: %+v %+v", findings(r, "probe-etcd-client-certificate"), findings(r, "probe-kubelet-read-only-port"))
	}
}

// TestProbeBadInput: options the probe cannot act on are errors, before
// any connection is made.
func TestProbeBadInput(t *testing.T) {
	for _, o := range []audit.ProbeOptions{
		{Ports: map[string]int{probe.APIServer: 6443}},
		{Hosts: []string{"https://10.0.0.1:6443"}, Ports: map[string]int{probe.APIServer: 6443}},
		{Hosts: []string{"10.0.0.1:6443"}, Ports: map[string]int{probe.APIServer: 6443}},
		{Hosts: []string{"10.0.0.1"}},
		{Hosts: []string{"10.0.0.1"}, Ports: map[string]int{probe.Etcd: 70000}},
	} {
		if _, err := audit.Probe(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestProbeRealControlPlane probes the real kube-apiserver, etcd and
// kube-controller-manager of the test bed, found the way kubepki audit
// probe finds them without a HOST (from the admin kubeconfig), plus
// kubelets and a scheduler stood in for, first with kubeadm's settings,
// then after anonymous callers were granted a namespace list and /metrics.
func TestProbeRealControlPlane(t *testing.T) {
	cacheTTL := func(o *testbed.ControlPlaneOptions) {
		// The controller-manager caches its authorizer's denials for 10 s
		// by default; the test changes the answer after the first probe.
		o.ControllerManagerFlags = append(o.ControllerManagerFlags, "--authorization-webhook-cache-unauthorized-ttl=100ms")
	}
	c := testbed.StartCluster(t, testbed.WithControllerManager(), cacheTTL)
	pki := filepath.Join(c.NodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	certs := newTestCerts(t, ca)

	target, err := audit.ProbeTargetOf(c.AdminConfig, "kubernetes-admin@kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	if target.Host != "127.0.0.1" || target.APIServerPort != c.Ports.APIServer || len(target.CA) != 1 || !target.CA[0].Equal(ca.Cert) {
		t.Fatalf("the admin kubeconfig gives %s port %d, %d CA certificates; want 127.0.0.1 port %d and the node's CA",
			target.Host, target.APIServerPort, len(target.CA), c.Ports.APIServer)
	}
	goodKubelet := standIn{cert: certs.good, clientAuth: tls.RequestClientCert}.start(t)
	good := probeReport(t, map[string]int{
		probe.APIServer: target.APIServerPort, probe.Etcd: c.Ports.EtcdClient, probe.ControllerManager: c.Ports.ControllerManager,
		probe.Kubelet: goodKubelet, probe.KubeletReadOnly: closedPort(t), probe.Scheduler: standIn{cert: certs.good}.start(t),
	}, target.CA)
	expectStatuses(t, "kubeadm's settings", good, map[string]report.Status{
		"probe-apiserver-anonymous": report.StatusPass, "probe-etcd-client-certificate": report.StatusPass,
		"probe-controller-manager-anonymous": report.StatusPass, "probe-kubelet-anonymous": report.StatusPass,
		"probe-kubelet-read-only-port": report.StatusPass, "probe-scheduler-anonymous": report.StatusPass,
		"probe-kubelet-serving-certificate": report.StatusPass,
	})
	api := findings(good, "probe-apiserver-anonymous")
	if len(api) != 1 || !strings.Contains(api[0].Message, "/version") || !strings.Contains(api[0].Message, "Kubernetes' default") ||
		!regexp.MustCompile(`/api/v1/secrets\?limit=1 40[13]`).MatchString(api[0].Message) {
		t.Errorf("the real apiserver: want /version answering and /api/v1/secrets refused: %+v", api)
	}
	for _, id := range []string{"probe-apiserver-anonymous", "probe-etcd-client-certificate", "probe-controller-manager-anonymous"} {
		for _, f := range findings(good, id) {
			t.Logf("real %s: %s", f.Component, f.Message)
		}
	}

	// Anonymous callers may now list namespaces and read /metrics,
	// through a binding made with the admin client.
	ctx := context.Background()
	if _, err := c.Admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "anonymous-reader"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list"}},
			{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "anonymous-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "anonymous-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// RBAC takes effect when the apiserver's informer sees the binding.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Anonymous.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the binding never took effect: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the controller-manager's cached denial

	bad := probeReport(t, map[string]int{
		probe.APIServer: target.APIServerPort, probe.ControllerManager: c.Ports.ControllerManager,
		probe.Kubelet: standIn{open: true, cert: certs.selfSigned}.start(t),
	}, target.CA)
	expectStatuses(t, "anonymous reader bound", bad, map[string]report.Status{
		"probe-apiserver-anonymous": report.StatusFail, "probe-controller-manager-anonymous": report.StatusFail,
		"probe-kubelet-anonymous": report.StatusFail, "probe-kubelet-serving-certificate": report.StatusWarn,
		"probe-etcd-client-certificate": report.StatusNotEvaluated,
	})
	for _, where := range []string{"/api/v1/namespaces", "/metrics"} {
		found := false
		for _, f := range findings(bad, "probe-apiserver-anonymous") {
			found = found || (f.Status == report.StatusFail && f.Location.Object == target.Host+":"+strconv.Itoa(target.APIServerPort)+" "+where)
		}
		if !found {
			t.Errorf("the anonymous GET %s of the real apiserver is not named: %+v", where, findings(bad, "probe-apiserver-anonymous"))
		}
	}
	if has(bad, "probe-apiserver-anonymous", report.StatusFail, "/api/v1/secrets") {
		t.Errorf("secrets were not granted, yet reported open")
	}
}
