package rotation_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubepki/kubepki/internal/parse"
	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/testbed"
)

// signingControllers are the test bed's controllers plus the CSR signer,
// so that the controller-manager signs CSRs with --cluster-signing-*.
var signingControllers = "--controllers=" + strings.Join(append(slices.Clone(testbed.ControllerManagerControllers), "csrsigning"), ",")

// live is a real control plane under rotation, and what the test checks
// through every phase.
type live struct {
	t     *testing.T
	c     *testbed.Cluster
	token string // a bound service-account token, issued before phase 1
	n     int    // CSRs asked for so far
}

func (l *live) kubeconfig(name string) *rest.Config {
	l.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(l.c.NodeDir, "etc/kubernetes", name))
	if err != nil {
		l.t.Fatal(err)
	}
	cfg.Host = l.c.Server
	cfg.TLSClientConfig.ServerName = testbed.APIServerName
	cfg.QPS, cfg.Burst = 1000, 1000
	return cfg
}

func whoami(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return r.Status.UserInfo.Username, nil
}

func poll(ctx context.Context, what string, f func() (bool, string)) error {
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for {
		ok, why := f()
		if ok {
			return nil
		}
		last = why
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s: still not after 60 s: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rootCA is the kube-root-ca.crt of a namespace, as a pod mounts it.
func (l *live) rootCA(ctx context.Context, cs kubernetes.Interface, ns string) ([]*x509.Certificate, []byte, error) {
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	c, _ := parse.PEM([]byte(cm.Data["ca.crt"]))
	return c.Certs, []byte(cm.Data["ca.crt"]), nil
}

// works checks, after a phase and its restarts, that the control plane
// does what it must: admin.conf as rewritten and scheduler.conf's identity
// authenticate, kube-root-ca.crt follows the node's ca.crt, the bound token
// works for a pod that trusts kube-root-ca.crt, and the controller-manager
// signs a CSR, with signer. It returns the CA that signed the CSR.
func (l *live) works(ctx context.Context, phase string) *x509.Certificate {
	t := l.t
	t.Helper()
	admin, err := kubernetes.NewForConfig(l.kubeconfig("admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := whoami(ctx, l.kubeconfig("admin.conf")); err != nil || u != "kubernetes-admin" {
		t.Fatalf("%s: admin.conf: %q, %v", phase, u, err)
	}
	if _, err := admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("%s: admin.conf cannot list namespaces: %v", phase, err)
	}
	if u, err := whoami(ctx, l.kubeconfig("scheduler.conf")); err != nil || u != "system:kube-scheduler" {
		t.Fatalf("%s: scheduler.conf: %q, %v", phase, u, err)
	}
	sched, _ := kubernetes.NewForConfig(l.kubeconfig("scheduler.conf"))
	if _, err := sched.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("%s: the scheduler's identity cannot list nodes: %v", phase, err)
	}
	// kube-root-ca.crt follows the controller-manager's --root-ca-file.
	nodeCA, err := os.ReadFile(filepath.Join(l.c.NodeDir, "etc/kubernetes/pki/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parse.PEM(nodeCA)
	var rootPEM []byte
	if err := poll(ctx, phase+": kube-root-ca.crt in default follows ca.crt", func() (bool, string) {
		certs, data, err := l.rootCA(ctx, admin, "default")
		if err != nil {
			return false, err.Error()
		}
		rootPEM = data
		return sameSet(certs, want.Certs), fmt.Sprintf("%d certificates, ca.crt has %d", len(certs), len(want.Certs))
	}); err != nil {
		t.Fatal(err)
	}
	// A pod's bound token, checked as the pod would, trusting kube-root-ca.crt.
	pod := &rest.Config{Host: l.c.Server, BearerToken: l.token, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: rootPEM}}
	if u, err := whoami(ctx, pod); err != nil || u != "system:serviceaccount:default:app" {
		t.Fatalf("%s: the bound token: %q, %v", phase, u, err)
	}
	// The controller-manager signs.
	l.n++
	name := fmt.Sprintf("rotation-%d", l.n)
	testbed.RequestClientCertificate(t, admin, name, "alice-"+name, []string{"devs"})
	testbed.ApproveCSR(t, admin, name)
	var issued *x509.Certificate
	if err := poll(ctx, phase+": the controller-manager signs CSR "+name, func() (bool, string) {
		csr, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c, _ := parse.PEM(csr.Status.Certificate)
		if len(c.Certs) == 0 {
			return false, fmt.Sprintf("no certificate yet; conditions %+v", csr.Status.Conditions)
		}
		issued = c.Certs[0]
		return true, ""
	}); err != nil {
		t.Fatalf("%v\nthe end of the controller-manager's log:\n%s", err, l.c.LogTail(testbed.ControllerManager, 20))
	}
	for _, ca := range want.Certs {
		if issued.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	t.Fatalf("%s: CSR %s was signed by none of ca.crt's CAs", phase, name)
	return nil
}

func sameSet(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, x.Equal) {
			return false
		}
	}
	return true
}

// restart restarts what a phase names that the test bed runs, as a kubelet
// restarts static pods; the scheduler and kubelet are not part of the test
// bed (their identities are checked through their kubeconfigs).
func (l *live) restart(ctx context.Context, res *rotation.Result) {
	l.t.Helper()
	var run []string
	for _, c := range res.Restart {
		if c == testbed.Etcd || c == testbed.KubeAPIServer || c == testbed.ControllerManager {
			run = append(run, c)
		}
	}
	if err := l.c.Restart(ctx, run...); err != nil {
		l.t.Fatalf("restarting %v after phase %d: %v", run, res.Phase, err)
	}
}

// TestRotateClusterCAOnRealControlPlane is the cluster CA rotation on a real
// control plane (etcd, kube-apiserver and kube-controller-manager from a
// kubeadm node), restarting what each phase names. Through every phase the
// controller-manager signs CSRs, a bound token works for a pod trusting
// kube-root-ca.crt, admin.conf as rewritten and scheduler.conf's identity
// authenticate. Phase 2 is killed (-9) in the middle and applied again. At
// the end the old admin.conf and super-admin.conf are refused (401), CSRs
// are signed by the new CA, and every kube-root-ca.crt holds the new CA
// alone.
func TestRotateClusterCAOnRealControlPlane(t *testing.T) {
	c := testbed.StartCluster(t, testbed.WithControllerManagerFlags(signingControllers))
	ctx := context.Background()
	l := &live{t: t, c: c}
	if _, err := c.Admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "app", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l.token = tr.Status.Token
	for _, ns := range []string{"team-a", "team-b"} {
		if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// kubeadm's cluster-info, which joining nodes read.
	info, err := clientcmdWrite(c.Server, c.CAData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.CoreV1().ConfigMaps("kube-public").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cluster-info"}, Data: map[string]string{"kubeconfig": string(info)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	oldAdmin, oldSuper := l.kubeconfig("admin.conf"), l.kubeconfig("super-admin.conf")
	oldCA := l.works(ctx, "before")
	// In-cluster clients (kube-proxy, CoreDNS, operators) read
	// kube-root-ca.crt when they start: one started before phase 1 and
	// never restarted, and one restarted between phases 1 and 2 as phase 1
	// says to.
	inCluster := func() *rest.Config {
		_, data, err := l.rootCA(ctx, c.Admin, "default")
		if err != nil {
			t.Fatal(err)
		}
		return &rest.Config{Host: c.Server, BearerToken: l.token, TLSClientConfig: rest.TLSClientConfig{ServerName: testbed.APIServerName, CAData: data}}
	}
	notRestarted := inCluster()
	var restarted *rest.Config

	for phase := 1; phase <= 5; phase++ {
		start := time.Now()
		var res *rotation.Result
		if phase == 2 {
			res = killAndResume(t, c.NodeDir)
		} else {
			// With the cluster: cluster-info follows in phases 1 and 4.
			o := opts(c.NodeDir, rotation.CACluster, phase)
			o.Cluster = l.kubeconfig("admin.conf")
			var err error
			if res, err = rotation.Apply(ctx, o); err != nil || len(res.Problems) > 0 {
				t.Fatalf("phase %d: %v %q", phase, err, res.Problems)
			}
		}
		applied := time.Since(start)
		l.restart(ctx, res)
		signer := l.works(ctx, res.Name)
		t.Logf("phase %d (%s): apply %v, restart of %v and checks %v", phase, res.Name, applied.Round(time.Millisecond), res.Restart, time.Since(start).Round(time.Millisecond)-applied.Round(time.Millisecond))
		if n := len(l.clusterInfoCAs(ctx)); (phase < 4 && n != 2) || (phase >= 4 && n != 1) {
			t.Errorf("phase %d: cluster-info trusts %d CAs", phase, n)
		}
		switch {
		case phase == 1:
			if !strings.Contains(strings.Join(res.Manual, "\n"), "in-cluster clients") {
				t.Errorf("phase 1 does not say to restart in-cluster clients: %q", res.Manual)
			}
			restarted = inCluster()
		case phase >= 2:
			if u, err := whoami(ctx, restarted); err != nil || u != "system:serviceaccount:default:app" {
				t.Errorf("phase %d: an in-cluster client restarted after phase 1: %q, %v", phase, u, err)
			}
			if _, err := whoami(ctx, notRestarted); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Errorf("phase %d: an in-cluster client not restarted since before phase 1: %v, want a TLS failure", phase, err)
			}
		}
		if phase < 3 && !signer.Equal(oldCA) {
			t.Errorf("phase %d: CSRs are signed by the new CA before the signer switched", phase)
		}
		if phase >= 3 && signer.Equal(oldCA) {
			t.Errorf("phase %d: CSRs are still signed by the old CA", phase)
		}
	}

	// Rolling back phases 5 and 4 gives cluster-info the old CA back;
	// applying them again takes it away.
	o := opts(c.NodeDir, rotation.CACluster, 0)
	o.Cluster = l.kubeconfig("admin.conf")
	for _, want := range []int{5, 4} {
		rb, err := rotation.Rollback(ctx, o)
		if err != nil || rb.Phase != want {
			t.Fatalf("rollback: %+v, %v", rb, err)
		}
		if want == 4 && !slices.Contains(rb.Restored, "ConfigMap/kube-public/cluster-info") {
			t.Errorf("rolling back phase 4 restored %v", rb.Restored)
		}
	}
	if n := len(l.clusterInfoCAs(ctx)); n != 2 {
		t.Errorf("cluster-info trusts %d CAs after rolling back phase 4", n)
	}
	for range 2 {
		if _, err := rotation.Apply(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.clusterInfoCAs(ctx)); n != 1 {
		t.Errorf("cluster-info trusts %d CAs after phase 4 again", n)
	}

	// The old kubeconfigs' identities are refused; the client trusts the
	// new CA here, to see the API server's answer and not a TLS failure.
	nodeCA, _ := os.ReadFile(filepath.Join(c.NodeDir, "etc/kubernetes/pki/ca.crt"))
	for name, cfg := range map[string]*rest.Config{"admin.conf": oldAdmin, "super-admin.conf": oldSuper} {
		cfg = rest.CopyConfig(cfg)
		cfg.CAData, cfg.CAFile = nodeCA, ""
		_, err := whoami(ctx, cfg)
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("the old %s: %v, want 401 Unauthorized", name, err)
		}
		// And as it was: it no longer even trusts the API server.
		if _, err := whoami(ctx, l.kubeconfig(name)); err != nil {
			t.Errorf("the new %s: %v", name, err)
		}
	}
	if _, err := whoami(ctx, oldSuper); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the old super-admin.conf as it was: %v, want a TLS failure", err)
	}
	// Every namespace's kube-root-ca.crt holds the new CA alone.
	want, _ := parse.PEM(nodeCA)
	if len(want.Certs) != 1 || want.Certs[0].Equal(oldCA) {
		t.Fatalf("ca.crt holds %d certificates at the end", len(want.Certs))
	}
	admin, _ := kubernetes.NewForConfig(l.kubeconfig("super-admin.conf"))
	nss, err := admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil || len(nss.Items) < 6 {
		t.Fatalf("namespaces: %v", err)
	}
	for _, ns := range nss.Items {
		if err := poll(ctx, "kube-root-ca.crt in "+ns.Name, func() (bool, string) {
			certs, _, err := l.rootCA(ctx, admin, ns.Name)
			if err != nil {
				return false, err.Error()
			}
			return sameSet(certs, want.Certs), fmt.Sprintf("%d certificates", len(certs))
		}); err != nil {
			t.Error(err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// killAndResume runs phase 2 in a child process, kills it (-9) between two
// certificate rewrites, and applies the phase again.
func killAndResume(t *testing.T, root string) *rotation.Result {
	t.Helper()
	killChild(t, root, 3)
	s, err := rotation.ReadStatus(opts(root, rotation.CACluster, 0))
	if err != nil || s.InProgress != 2 {
		t.Fatalf("status after kill -9: %+v, %v", s, err)
	}
	return apply(t, root, rotation.CACluster, 0)
}

// clientcmdWrite is a kubeconfig as kubeadm puts in cluster-info: one
// cluster without a name, no user.
func clientcmdWrite(server string, ca []byte) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	return clientcmd.Write(*cfg)
}

// clusterInfoCAs are the CAs cluster-info's kubeconfig trusts.
func (l *live) clusterInfoCAs(ctx context.Context) []*x509.Certificate {
	l.t.Helper()
	admin, err := kubernetes.NewForConfig(l.kubeconfig("admin.conf"))
	if err != nil {
		l.t.Fatal(err)
	}
	cm, err := admin.CoreV1().ConfigMaps("kube-public").Get(ctx, "cluster-info", metav1.GetOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	cfg, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
	if err != nil {
		l.t.Fatal(err)
	}
	var out []*x509.Certificate
	for _, cl := range cfg.Clusters {
		c, _ := parse.PEM(cl.CertificateAuthorityData)
		out = append(out, c.Certs...)
	}
	return out
}
