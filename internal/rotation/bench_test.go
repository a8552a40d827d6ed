package rotation_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/sources/cluster"
	"github.com/kubepki/kubepki/internal/sources/node"
	"github.com/kubepki/kubepki/internal/testbed"
)

// The rotate plan benchmark loads a real control plane once per process
// with the size: 2,000 namespaces, each with the kube-root-ca.crt
// the controller-manager publishes, and 10,000 Secrets (8,000 opaque, 1,000
// TLS certificates signed by the cluster CA, 1,000 kubeconfigs embedding
// the CA and a client certificate of their own). KUBEPKI_BENCH_SCALE divides it.

var bench struct {
	once sync.Once
	cp   *testbed.ControlPlaneProcess
	dir  string
	err  error
}

func benchScale() int {
	if n, err := strconv.Atoi(os.Getenv("KUBEPKI_BENCH_SCALE")); err == nil && n > 0 {
		return n
	}
	return 1
}

func benchCluster(b *testing.B) *testbed.ControlPlaneProcess {
	b.Helper()
	testbed.RequireRoot(b)
	bin := testbed.BinDir(b)
	nodeDir := testbed.ControlPlane(b)
	bench.once.Do(func() {
		if bench.dir, bench.err = os.MkdirTemp("", "kubepki-rotate-bench-"); bench.err != nil {
			return
		}
		if bench.err = testbed.CopyTree(nodeDir, filepath.Join(bench.dir, "node")); bench.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		bench.cp, bench.err = testbed.StartControlPlane(ctx, testbed.ControlPlaneOptions{BinDir: bin, NodeDir: filepath.Join(bench.dir, "node"), WorkDir: filepath.Join(bench.dir, "work"), ControllerManager: true})
		if bench.err != nil {
			return
		}
		start := time.Now()
		bench.err = loadBench(bench.cp, benchScale())
		fmt.Fprintf(os.Stderr, "loaded the rotate plan cluster in %v\n", time.Since(start).Round(time.Second))
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.cp
}

func stopBench() {
	if bench.cp != nil {
		bench.cp.Stop()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
}

func loadBench(cp *testbed.ControlPlaneProcess, div int) error {
	ctx := context.Background()
	cfg := rest.CopyConfig(cp.SuperAdminConfig)
	cfg.QPS, cfg.Burst = 2000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	namespaces, secrets := 2000/div, 10000/div
	if err := testbed.Load(namespaces, 32, func(i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i)}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	ca, err := certgen.Load(filepath.Join(cp.NodeDir, "etc/kubernetes/pki/ca.crt"), filepath.Join(cp.NodeDir, "etc/kubernetes/pki/ca.key"))
	if err != nil {
		return err
	}
	now := time.Now()
	if err := testbed.Load(secrets, 32, func(i int) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", i), Namespace: fmt.Sprintf("ns-%d", i%namespaces)}}
		switch i % 10 {
		case 0: // a TLS certificate of its own, signed by the cluster CA
			p, err := certgen.New(certgen.Spec{CommonName: fmt.Sprintf("web-%d", i), Key: certgen.ECDSAP256, Server: true, DNSNames: []string{fmt.Sprintf("web-%d.example.com", i)}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, ca)
			if err != nil {
				return err
			}
			key, _ := p.KeyPEM()
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{corev1.TLSCertKey: p.CertPEM(), corev1.TLSPrivateKeyKey: key}
		case 1: // a kubeconfig of its own user, as client-go writes them
			p, err := certgen.New(certgen.Spec{CommonName: fmt.Sprintf("ci-%d", i), Organization: []string{"ci"}, Key: certgen.ECDSAP256, Client: true, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}, ca)
			if err != nil {
				return err
			}
			kc, err := certgen.Kubeconfig{Cluster: testbed.ClusterName, Server: "https://192.0.2.10:6443", CA: ca, User: fmt.Sprintf("ci-%d", i), Client: p}.Bytes()
			if err != nil {
				return err
			}
			s.Data = map[string][]byte{"config": kc}
		default:
			s.Data = map[string][]byte{"username": []byte(fmt.Sprintf("user-%d", i)), "password": []byte("0123456789abcdef0123456789abcdef"), "url": []byte("postgres://db.example.com:5432/app")}
		}
		_, err := cs.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	// The controller-manager publishes kube-root-ca.crt in every namespace.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		l, err := cs.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=kube-root-ca.crt"})
		if err != nil {
			return err
		}
		if len(l.Items) >= namespaces {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d kube-root-ca.crt ConfigMaps after 5 minutes", len(l.Items))
		}
		time.Sleep(time.Second)
	}
}

// BenchmarkRotatePlan measures kubepki rotate plan --ca cluster (the node's
// files and every cluster object it reads, reduced and planned) against a
// bare LIST of the same objects, one after the other so that with -count
// the two interleave and machine noise hits both alike.
func BenchmarkRotatePlan(b *testing.B) {
	cp := benchCluster(b)
	cfg := rest.CopyConfig(cp.SuperAdminConfig)
	b.Run("BareList", func(b *testing.B) { benchBareTrustList(b, cfg) })
	b.Run("Plan", func(b *testing.B) {
		var deps int
		for b.Loop() {
			t, err := cluster.ReadTrust(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			n := node.Read(context.Background(), node.Options{Root: cp.NodeDir})
			p := rotation.Build(rotation.Input{CA: rotation.CACluster, Nodes: []*evidence.Node{n}, Cluster: t, Now: time.Now()})
			deps = len(p.Dependents)
		}
		b.ReportMetric(float64(deps), "dependents")
	})
}

// benchBareTrustList is the baseline: client-go LISTs of the same objects,
// with the same page size (500) and concurrency (4), protobuf where the API
// serves it, keeping nothing.
func benchBareTrustList(b *testing.B, cfg *rest.Config) {
	ctx := context.Background()
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pcfg.QPS, pcfg.Burst = 50, 100
	var objects atomic.Int64
	for b.Loop() {
		objects.Store(0)
		cs, err := kubernetes.NewForConfig(pcfg)
		if err != nil {
			b.Fatal(err)
		}
		dy, err := dynamic.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		type lister func(metav1.ListOptions) (runtime.Object, error)
		dyn := func(gvr schema.GroupVersionResource) lister {
			return func(o metav1.ListOptions) (runtime.Object, error) { return dy.Resource(gvr).List(ctx, o) }
		}
		lists := []lister{
			func(o metav1.ListOptions) (runtime.Object, error) { return cs.CoreV1().Secrets("").List(ctx, o) },
			func(o metav1.ListOptions) (runtime.Object, error) { return cs.CoreV1().ConfigMaps("").List(ctx, o) },
			func(o metav1.ListOptions) (runtime.Object, error) {
				return cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, o)
			},
			func(o metav1.ListOptions) (runtime.Object, error) {
				return cs.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, o)
			},
			dyn(schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}),
			dyn(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}),
			func(o metav1.ListOptions) (runtime.Object, error) {
				return cs.CertificatesV1().CertificateSigningRequests().List(ctx, o)
			},
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
					obj, err := l(o)
					if err != nil {
						b.Error(err)
						return
					}
					acc, err := meta.ListAccessor(obj)
					if err != nil {
						b.Error(err)
						return
					}
					items, _ := meta.ExtractList(obj)
					objects.Add(int64(len(items)))
					if acc.GetContinue() == "" {
						return
					}
					o.Continue = acc.GetContinue()
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(objects.Load()), "objects")
}
