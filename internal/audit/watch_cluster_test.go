package audit

import (
	"context"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/kubepki/kubepki/internal/certgen"
	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/exporter"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestWatchWithoutLedgerOnRealCluster: a watcher that may read CSRs and
// not IssuedCredentials, on a cluster that does not serve them yet, still
// serves the CSRs' certificates (the ledger reported unsynced, not an
// error); once the CRD is there and the watcher may read it, the ledger's
// certificates join without a restart.
func TestWatchWithoutLedgerOnRealCluster(t *testing.T) {
	c := testbed.StartCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	c.IssueClientCertificate(t, "alice", []string{"dev"}, now.Add(-time.Minute), time.Hour)

	rules := []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"list", "watch"}}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "watcher"}, Rules: rules}
	if _, err := c.Admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "watcher"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "watcher"},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "watcher"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := *c.AdminConfig
	cfg.Impersonate.UserName = "watcher"
	ks, err := kubestore.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	set := exporter.NewCertificateSet()
	reg := prometheus.NewRegistry()
	status := exporter.NewWatchMetrics(reg)
	done := make(chan error, 1)
	go func() {
		done <- WatchCertificates(ctx, WatchOptions{Config: &cfg, Target: "t", Ledger: ks, Policy: policy.Default(), Set: set, Status: status,
			Log: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Retry: 300 * time.Millisecond, LedgerWait: 20 * time.Second})
	}()
	metric := func(name, resource string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mfs {
			if f.GetName() != name {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetValue() == resource {
						if m.Gauge != nil {
							return m.GetGauge().GetValue()
						}
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return -1
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s (certificates served: %d)", what, set.Len())
			}
		}
	}
	served := func() string {
		fams, _ := set.Gather()
		var b strings.Builder
		for _, f := range fams {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					b.WriteString(l.GetValue() + " ")
				}
			}
		}
		return b.String()
	}
	// Forbidden and not served: alice's CSR certificate is served, at
	// once rather than after LedgerWait.
	start := time.Now()
	waitFor("alice's certificate served without a ledger", func() bool { return strings.Contains(served(), "CertificateSigningRequest/alice") })
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the CSRs' certificates were served %s after start: the watch waited for a ledger it may not read", d)
	}
	if v := metric("kubepki_certificate_watch_synced", ResourceCSRs); v != 1 {
		t.Errorf("synced{csrs} = %v", v)
	}
	if v := metric("kubepki_certificate_watch_synced", ResourceLedger); v != 0 {
		t.Errorf("synced{ledger} = %v, want 0", v)
	}
	if v := metric("kubepki_certificate_watch_last_event_timestamp_seconds", ResourceCSRs); v < float64(start.Unix()-1) {
		t.Errorf("last event{csrs} = %v", v)
	}

	// The ledger arrives, with a certificate whose CSR is gone, and the
	// watcher may read it.
	testbed.ApplyDeploy(t, c.AdminConfig, "ledger-crd.yaml")
	role.Rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{"kubepki.io"}, Resources: []string{"issuedcredentials"}, Verbs: []string{"list", "watch"}})
	if _, err := c.Admin.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	pki := c.NodeDir + "/etc/kubernetes/pki"
	ca, err := certgen.Load(pki+"/ca.crt", pki+"/ca.key")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := certgen.New(certgen.Spec{CommonName: "bob", Client: true, NotBefore: now, NotAfter: now.Add(time.Hour)}, ca)
	if err != nil {
		t.Fatal(err)
	}
	e, skip := ledger.FromCSR(evidenceCSR("bob-gone", bob.Cert), "", now)
	if skip != nil {
		t.Fatal(skip.Detail)
	}
	u, err := kubestore.ToObject(e)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err = dyn.Resource(kubestore.GVR).Create(ctx, u, metav1.CreateOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	waitFor("bob's ledger certificate served", func() bool { return strings.Contains(served(), u.GetName()) })
	waitFor("synced{ledger} = 1", func() bool { return metric("kubepki_certificate_watch_synced", ResourceLedger) == 1 })
	if !strings.Contains(served(), "CertificateSigningRequest/alice") {
		t.Error("alice's certificate went when the ledger came")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchCertificates: %v", err)
	}
}

// evidenceCSR is an issued CSR for cert.
func evidenceCSR(name string, cert *x509.Certificate) evidence.CSR {
	return evidence.CSR{Name: name, SignerName: ledger.SignerAPIServerClient, Certificate: cert, Approved: true, Requester: "kubernetes-admin", Created: time.Now()}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
