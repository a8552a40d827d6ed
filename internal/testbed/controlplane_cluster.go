package testbed

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
)

// Cluster is a real control plane started for one test: kubeadm's etcd
// and kube-apiserver (and optionally kube-controller-manager) running from
// a fresh kubeadm node on loopback. The embedded ControlPlaneProcess gives
// Server, the kubeconfig paths, the rest.Configs and NodeDir, where the CA
// key is (etc/kubernetes/pki/ca.key) for tests that sign CSRs.
type Cluster struct {
	*ControlPlaneProcess
	// Admin is kubeadm's admin.conf identity (kubeadm:cluster-admins,
	// bound to cluster-admin), SuperAdmin its super-admin.conf
	// (system:masters), Anonymous a client with no credentials. Unlike
	// the rest.Configs, which are as the kubeconfigs give them, these are
	// not rate-limited on the client side.
	Admin      *kubernetes.Clientset
	SuperAdmin *kubernetes.Clientset
	Anonymous  *kubernetes.Clientset
}

// ClusterOption changes how StartCluster starts a control plane. It runs
// with NodeDir already written, so it may add files there (paths under
// /etc/kubernetes in flags are read from NodeDir).
type ClusterOption func(*ControlPlaneOptions)

// WithControllerManager also runs kube-controller-manager with
// ControllerManagerControllers (never csrsigning).
func WithControllerManager() ClusterOption {
	return func(o *ControlPlaneOptions) { o.ControllerManager = true }
}

// WithControllerManagerFlags replaces or adds controller-manager flags
// ("--name=value"); --controllers=…,csrsigning makes it sign CSRs.
func WithControllerManagerFlags(flags ...string) ClusterOption {
	return func(o *ControlPlaneOptions) {
		o.ControllerManager = true
		o.ControllerManagerFlags = append(o.ControllerManagerFlags, flags...)
	}
}

// WithAPIServerFlags replaces or adds apiserver flags ("--name=value").
func WithAPIServerFlags(flags ...string) ClusterOption {
	return func(o *ControlPlaneOptions) { o.APIServerFlags = append(o.APIServerFlags, flags...) }
}

// WithoutAPIServerFlags leaves out kubeadm's apiserver flags of these
// names ("--name").
func WithoutAPIServerFlags(names ...string) ClusterOption {
	return func(o *ControlPlaneOptions) { o.RemoveAPIServerFlags = append(o.RemoveAPIServerFlags, names...) }
}

// StartCluster starts a control plane of its own for the test, from a fresh
// copy of the test bed's kubeadm node, and stops it when the test ends. It
// skips the test unless run as root (kubeadm --rootfs chroots).
//
// Every call starts an independent control plane, a few seconds each.
// There is deliberately no shared one: audits read the whole cluster, so a
// test's objects would change another test's findings.
func StartCluster(t testing.TB, opts ...ClusterOption) *Cluster {
	t.Helper()
	RequireRoot(t)
	o := ControlPlaneOptions{BinDir: BinDir(t), NodeDir: ControlPlane(t), WorkDir: t.TempDir()}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, err := StartControlPlane(ctx, o)
	if err != nil {
		t.Fatalf("starting the test bed's control plane: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the end of the kube-apiserver log:\n%s", cp.LogTail(KubeAPIServer, 15))
		}
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the test bed's control plane: %v", err)
		}
	})
	c := &Cluster{ControlPlaneProcess: cp}
	if c.Admin, err = kubernetes.NewForConfig(unthrottled(cp.AdminConfig)); err != nil {
		t.Fatal(err)
	}
	if c.SuperAdmin, err = kubernetes.NewForConfig(unthrottled(cp.SuperAdminConfig)); err != nil {
		t.Fatal(err)
	}
	if c.Anonymous, err = kubernetes.NewForConfig(unthrottled(cp.AnonymousConfig)); err != nil {
		t.Fatal(err)
	}
	return c
}
