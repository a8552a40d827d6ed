package audit_test

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	certsv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// The large-cluster benchmark loads a synthetic cluster into a real
// control plane once per process, then measures kubepki audit cluster
// (read, index, checks, JSON report) against a bare client-go LIST of the
// same resources, with the same page size, concurrency and encoding.
//
// The size is the issue's: 2,000 namespaces, 20,000 RoleBindings, 3,000
// ClusterRoles and as many ClusterRoleBindings, 10,000 service accounts,
// 20,000 pods and 2,000 issued CSRs. KUBEPKI_BENCH_SCALE divides it for a
// quick run (10 gives a tenth).

// benchCluster is a real control plane loaded once per test binary and
// shared by the benchmarks that read it.
type benchCluster struct {
	once sync.Once
	dir  string
	cp   *testbed.ControlPlaneProcess
	cfg  *rest.Config
	err  error
	objs int
	load time.Duration
}

var (
	// large is the large cluster of BenchmarkCluster.
	large benchCluster
	// issued holds 10,000 issued client certificates, for the exporter.
	issued benchCluster
)

func stopBenchClusters() {
	for _, c := range []*benchCluster{&large, &issued} {
		if c.cp != nil {
			c.cp.Stop()
		}
		if c.dir != "" {
			os.RemoveAll(c.dir)
		}
	}
}

// start starts the control plane and loads it with load, the first time.
func (c *benchCluster) start(b *testing.B, load func(cfg *rest.Config, nodeDir string) (int, error)) *rest.Config {
	b.Helper()
	testbed.RequireRoot(b)
	bin := testbed.BinDir(b)
	node := testbed.ControlPlane(b) // removed with b's temp dirs; the node stays read while the cluster runs
	c.once.Do(func() {
		// The node directory belongs to the first benchmark; copy it
		// somewhere that lives as long as the process.
		dir, err := os.MkdirTemp("", "kubepki-bench-node-")
		if err != nil {
			c.err = err
			return
		}
		c.dir = dir
		if err := testbed.CopyTree(node, dir); err != nil {
			c.err = err
			return
		}
		cp, err := testbed.StartControlPlane(context.Background(), testbed.ControlPlaneOptions{BinDir: bin, NodeDir: dir})
		if err != nil {
			c.err = err
			return
		}
		c.cp = cp
		cfg := rest.CopyConfig(cp.AdminConfig)
		cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit while loading
		start := time.Now()
		c.objs, c.err = load(cfg, dir)
		c.load = time.Since(start)
		c.cfg = rest.CopyConfig(cp.AdminConfig)
		fmt.Fprintf(os.Stderr, "loaded %d objects in %s\n", c.objs, c.load.Round(time.Second))
	})
	if c.err != nil {
		b.Fatal(c.err)
	}
	return c.cfg
}

func largeCluster(b *testing.B) *rest.Config {
	return large.start(b, func(cfg *rest.Config, dir string) (int, error) { return loadLargeCluster(cfg, dir, scale()) })
}

func scale() int {
	if n, err := strconv.Atoi(os.Getenv("KUBEPKI_BENCH_SCALE")); err == nil && n > 0 {
		return n
	}
	return 1
}

func loadLargeCluster(cfg *rest.Config, nodeDir string, div int) (int, error) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, err
	}
	var (
		namespaces   = 2000 / div
		saPerNS      = 5 // default and four more
		rbPerNS      = 10
		podsPerNS    = 10
		clusterRoles = 3000 / div
		csrs         = 2000 / div
	)
	objs := 0
	ns := func(i int) string { return fmt.Sprintf("bench-%04d", i) }
	err = testbed.Load(namespaces, 48, func(i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns(i)}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("namespaces: %w", err)
	}
	objs += namespaces
	verbs := [][]string{{"get", "list"}, {"create", "update"}, {"*"}, {"watch"}}
	resources := [][]string{{"pods"}, {"configmaps", "services"}, {"deployments"}, {"secrets"}, {"pods/log"}}
	err = testbed.Load(clusterRoles, 48, func(i int) error {
		name := fmt.Sprintf("bench-cr-%04d", i)
		_, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"", "apps"}, Resources: resources[i%len(resources)], Verbs: verbs[i%len(verbs)]},
				{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: []string{"cm-" + strconv.Itoa(i)}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects: []rbacv1.Subject{
				{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%d", i)},
				{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("team-%d", i%50)},
			},
		}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cluster roles: %w", err)
	}
	objs += 2 * clusterRoles
	err = testbed.Load(namespaces, 48, func(i int) error {
		n := ns(i)
		for s := range saPerNS {
			name := "default"
			if s > 0 {
				name = fmt.Sprintf("app-%d", s)
			}
			if _, err := cs.CoreV1().ServiceAccounts(n).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		if _, err := cs.RbacV1().Roles(n).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "app"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps", "pods"}, Verbs: []string{"get", "list", "watch"}}},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		for r := range rbPerNS {
			ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "app"}
			if r%2 == 1 {
				ref = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fmt.Sprintf("bench-cr-%04d", (i*rbPerNS+r)%clusterRoles)}
			}
			if _, err := cs.RbacV1().RoleBindings(n).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("rb-%d", r)},
				RoleRef:    ref,
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: fmt.Sprintf("app-%d", 1+r%(saPerNS-1)), Namespace: n}},
			}, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		for p := range podsPerNS {
			// Two ReplicaSets' replicas per namespace, as Deployments
			// make them; the owners need not exist for the audit.
			automount := p%2 != 0
			rs := fmt.Sprintf("app-%d-5d8f7c", p%2)
			yes := true
			if _, err := cs.CoreV1().Pods(n).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{
					Name:            fmt.Sprintf("%s-%d", rs, p),
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs, UID: types.UID("00000000-0000-0000-0000-00000000000" + strconv.Itoa(p%2)), Controller: &yes}},
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:           []string{"default", "app-1"}[p%2],
					AutomountServiceAccountToken: &automount,
					Containers:                   []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
				},
			}, metav1.CreateOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("namespaced objects: %w", err)
	}
	objs += namespaces * (saPerNS + 1 + rbPerNS + podsPerNS)

	if err := loadIssuedCSRs(ctx, cs, nodeDir, csrs); err != nil {
		return 0, err
	}
	objs += csrs
	return objs, nil
}

// loadIssuedCSRs creates n approved kube-apiserver-client CSRs, each with a
// certificate signed by the node's cluster CA (one key for all: making keys
// is not what is measured), expiring 1 to 400 days from now.
func loadIssuedCSRs(ctx context.Context, cs kubernetes.Interface, nodeDir string, n int) error {
	pki := filepath.Join(nodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		return err
	}
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		return err
	}
	now := time.Now()
	err = testbed.Load(n, 48, func(i int) error {
		user := fmt.Sprintf("person-%04d", i)
		der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{Subject: pkix.Name{CommonName: user, Organization: []string{"team-" + strconv.Itoa(i%50)}}}, key)
		if err != nil {
			return err
		}
		csr, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, &certsv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: user},
			Spec: certsv1.CertificateSigningRequestSpec{
				Request: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), SignerName: "kubernetes.io/kube-apiserver-client",
				Usages: []certsv1.KeyUsage{certsv1.UsageDigitalSignature, certsv1.UsageClientAuth},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		csr.Status.Conditions = []certsv1.CertificateSigningRequestCondition{{Type: certsv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Bench"}}
		if csr, err = cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, user, csr, metav1.UpdateOptions{}); err != nil {
			return err
		}
		leaf, err := certgen.New(certgen.Spec{CommonName: user, Organization: []string{"team-" + strconv.Itoa(i%50)}, Client: true, Signer: key, NotBefore: now, NotAfter: now.Add(time.Duration(1+i%400) * 24 * time.Hour)}, ca)
		if err != nil {
			return err
		}
		csr.Status.Certificate = leaf.CertPEM()
		_, err = cs.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("CSRs: %w", err)
	}
	return nil
}

// loadLedger applies the ledger's CRD and creates n IssuedCredentials for
// certificates whose CSR is gone (none of them is among the CSRs), signed
// by the node's cluster CA (one key for all), expiring 1 to 400 days from
// now.
func loadLedger(ctx context.Context, cfg *rest.Config, nodeDir string, n int) error {
	root, err := testbed.RepoRoot()
	if err != nil {
		return err
	}
	crd, err := os.ReadFile(filepath.Join(root, "deploy", "ledger-crd.yaml"))
	if err != nil {
		return err
	}
	if _, err := testbed.Apply(ctx, cfg, crd, testbed.ApplyOptions{}); err != nil {
		return err
	}
	st, err := kubestore.New(cfg)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := st.Served(ctx); err == nil {
			break
		} else if time.Now().After(deadline) {
			return err
		}
	}
	pki := filepath.Join(nodeDir, "etc/kubernetes/pki")
	ca, err := certgen.Load(filepath.Join(pki, "ca.crt"), filepath.Join(pki, "ca.key"))
	if err != nil {
		return err
	}
	key, err := certgen.NewKey(certgen.ECDSAP256)
	if err != nil {
		return err
	}
	now := time.Now()
	err = testbed.Load(n, 48, func(i int) error {
		user := fmt.Sprintf("former-%04d", i)
		groups := []string{"team-" + strconv.Itoa(i%50)}
		leaf, err := certgen.New(certgen.Spec{CommonName: user, Organization: groups, Client: true, Signer: key, NotBefore: now, NotAfter: now.Add(time.Duration(1+i%400) * 24 * time.Hour)}, ca)
		if err != nil {
			return err
		}
		e, skip := ledger.FromCSR(evidence.CSR{Name: user, UID: strconv.Itoa(i), SignerName: ledger.SignerAPIServerClient, Requester: "kubernetes-admin", Created: now,
			Approved: true, ApprovedAt: now, ApprovalReason: "Bench", Certificate: leaf.Cert}, "", now)
		if skip != nil {
			return errors.New(skip.Detail)
		}
		_, err = st.Record(e)
		return err
	})
	if err != nil {
		return fmt.Errorf("IssuedCredentials: %w", err)
	}
	return nil
}

// peakHeap samples the Go heap while fn runs and returns its peak in MiB.
func peakHeap(fn func()) float64 {
	goruntime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms goruntime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			goruntime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return float64(peak.Load()) / (1 << 20)
}

// BenchmarkCluster measures, on the large cluster, the bare LIST baseline
// and kubepki's audit one after the other, so that with -count the two
// interleave and machine noise hits both alike.
func BenchmarkCluster(b *testing.B) {
	cfg := largeCluster(b)
	b.Run("BareList", func(b *testing.B) { benchBareList(b, cfg) })
	b.Run("Audit", func(b *testing.B) { benchAudit(b, cfg) })
}

// benchAudit is kubepki audit cluster: every LIST, the RBAC index, every
// check and the JSON report.
func benchAudit(b *testing.B, cfg *rest.Config) {
	var heap float64
	var findings, certs int
	for b.Loop() {
		heap = max(heap, peakHeap(func() {
			r, err := audit.Cluster(context.Background(), audit.ClusterOptions{Config: cfg, Context: "bench", Now: time.Now(), Policy: checks.DefaultPolicy()})
			if err != nil {
				b.Fatal(err)
			}
			if err := report.Write(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			findings, certs = len(r.Findings), len(r.Certificates)
		}))
	}
	b.ReportMetric(heap, "peak-heap-MiB")
	b.ReportMetric(float64(findings), "findings")
	b.ReportMetric(float64(certs), "certs")
}

// benchBareList is the baseline: client-go LISTs of the same resources,
// with the same page size (500), concurrency (4) and encoding (protobuf;
// metadata only for Secrets), keeping nothing.
func benchBareList(b *testing.B, cfg *rest.Config) {
	ctx := context.Background()
	type lister func(metav1.ListOptions) (string, int, error)
	var cs *kubernetes.Clientset
	var md metadata.Interface
	lists := []lister{
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.RbacV1().ClusterRoles().List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.RbacV1().ClusterRoleBindings().List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.RbacV1().Roles("").List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.RbacV1().RoleBindings("").List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.CoreV1().ServiceAccounts("").List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.CoreV1().Pods("").List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			o.FieldSelector = "type=kubernetes.io/service-account-token"
			l, err := md.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace("").List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			o.FieldSelector = "type=bootstrap.kubernetes.io/token"
			l, err := cs.CoreV1().Secrets("kube-system").List(ctx, o)
			return cont(l, err)
		},
		func(o metav1.ListOptions) (string, int, error) {
			l, err := cs.CertificatesV1().CertificateSigningRequests().List(ctx, o)
			return cont(l, err)
		},
	}
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pcfg.QPS, pcfg.Burst = 50, 100
	var heap float64
	var objects atomic.Int64
	for b.Loop() {
		objects.Store(0)
		heap = max(heap, peakHeap(func() {
			// New clients each run, as a fresh program (and each
			// kubepki audit) makes them: TLS handshakes included.
			var err error
			if cs, err = kubernetes.NewForConfig(pcfg); err != nil {
				b.Fatal(err)
			}
			if md, err = metadata.NewForConfig(cfg); err != nil {
				b.Fatal(err)
			}
			sem := make(chan struct{}, 4)
			var wg sync.WaitGroup
			for _, l := range lists {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					o := metav1.ListOptions{Limit: 500}
					for {
						next, n, err := l(o)
						if err != nil {
							b.Error(err)
							return
						}
						objects.Add(int64(n))
						if next == "" {
							return
						}
						o.Continue = next
					}
				}()
			}
			wg.Wait()
		}))
	}
	b.ReportMetric(heap, "peak-heap-MiB")
	b.ReportMetric(float64(objects.Load()), "objects")
}

// cont returns a list's continue token and length.
func cont(l runtime.Object, err error) (string, int, error) {
	if err != nil {
		return "", 0, err
	}
	acc, err := meta.ListAccessor(l)
	if err != nil {
		return "", 0, err
	}
	return acc.GetContinue(), meta.LenList(l), nil
}
