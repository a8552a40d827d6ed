package exporter

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestMetricsMatchRealKubeadmNode: every certificate file of a real kubeadm
// node shows up with its notBefore and notAfter exactly as x509 parses them.
func TestMetricsMatchRealKubeadmNode(t *testing.T) {
	root := testbed.ControlPlane(t)
	col := New(func(ctx context.Context) (*report.Report, error) {
		return audit.Node(ctx, audit.NodeOptions{Root: root, Now: time.Now(), Policy: checks.DefaultPolicy()}), nil
	}, time.Minute)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float64{} // path → notBefore, notAfter
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] != "file" || labels["index"] != "0" {
				continue
			}
			v := got[labels["path"]]
			switch mf.GetName() {
			case "kubepki_certificate_not_before_timestamp_seconds":
				v[0] = m.Gauge.GetValue()
			case "kubepki_certificate_not_after_timestamp_seconds":
				v[1] = m.Gauge.GetValue()
			}
			got[labels["path"]] = v
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "etc/kubernetes/pki/*.crt"))
	etcd, _ := filepath.Glob(filepath.Join(root, "etc/kubernetes/pki/etcd/*.crt"))
	files = append(files, etcd...)
	if len(files) < 10 {
		t.Fatalf("only %d certificate files in the kubeadm node", len(files))
	}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		b, _ := pem.Decode(data)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimPrefix(f, root+"/")
		v, ok := got[p]
		if !ok {
			t.Errorf("%s: no metric", p)
			continue
		}
		if v[0] != float64(c.NotBefore.Unix()) || v[1] != float64(c.NotAfter.Unix()) {
			t.Errorf("%s: metrics %v, certificate %d %d", p, v, c.NotBefore.Unix(), c.NotAfter.Unix())
		}
	}
	if n := testutil.CollectAndCount(col, "kubepki_findings"); n == 0 {
		t.Error("no kubepki_findings series")
	}
}

func TestScanFailure(t *testing.T) {
	col := New(func(context.Context) (*report.Report, error) { return nil, errors.New("boom") }, time.Second)
	if err := testutil.CollectAndCompare(col, strings.NewReader(`# HELP kubepki_scan_success 1 when the last scan succeeded, 0 when it failed.
# TYPE kubepki_scan_success gauge
kubepki_scan_success 0
`), "kubepki_scan_success"); err != nil {
		t.Error(err)
	}
}

// TestAlertRulesParse loads deploy/prometheus-rules.yaml with Prometheus'
// own rule-file parser, and checks every rule uses kubepki's metrics.
func TestAlertRulesParse(t *testing.T) {
	alerts := alertExprs(t)
	for _, want := range []string{"KubernetesCAExpiringSoon", "KubernetesCertificateExpiringSoon", "KubepkiCriticalFinding"} {
		if !strings.Contains(alerts[want], "kubepki_") {
			t.Errorf("alert %s: %q", want, alerts[want])
		}
	}
	// The webhook's stale-list gauge (internal/webhook, tested there to
	// read 1 while the list cannot be read).
	if alerts["KubepkiRevocationListStale"] != "kubepki_revocation_list_stale == 1" {
		t.Errorf("KubepkiRevocationListStale: %q", alerts["KubepkiRevocationListStale"])
	}
	// The expiry alerts hold no window of their own: they compare the time
	// left with the window of the policy, which the exporter exports
	// (TestAlertsFollowThePolicy evaluates them).
	for _, a := range []string{"KubernetesCAExpiringSoon", "KubernetesCertificateExpiringSoon"} {
		if !strings.Contains(alerts[a], "kubepki_certificate_expiry_window_seconds") || regexp.MustCompile(`\d+\s*\*\s*24|\d{5,}`).MatchString(alerts[a]) {
			t.Errorf("alert %s must compare with the policy's window, not a threshold of its own: %q", a, alerts[a])
		}
	}
}
