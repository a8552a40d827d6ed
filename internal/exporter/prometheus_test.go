package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/report"
	"github.com/kubepki/kubepki/internal/sample"
	"github.com/kubepki/kubepki/internal/testbed"
)

// TestRealPrometheusScrapesAndAlerts runs a real Prometheus server
// (Debian's prometheus package, which .ci/run installs) against the
// exporter on the sample node, with deploy/prometheus-rules.yaml loaded:
// the series it stores match the certificates' dates to the second, every
// rule is healthy, and the alerts for the sample node's expired and
// expiring certificates and its critical findings become active.
func TestRealPrometheusScrapesAndAlerts(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("no prometheus binary: install Debian's prometheus package (.ci/run does)")
	}
	repo, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	now := time.Now().UTC()
	if err := sample.WriteNode(root, now); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var last *report.Report
	col := New(func(ctx context.Context) (*report.Report, error) {
		r := audit.Node(ctx, audit.NodeOptions{Root: root, Now: time.Now().UTC(), Policy: checks.DefaultPolicy()})
		mu.Lock()
		last = r
		mu.Unlock()
		return r, nil
	}, time.Minute)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	exp := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer exp.Close()

	port := freePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
- job_name: kubepki
  static_configs:
  - targets: [%q]
`, filepath.Join(repo, "deploy/prometheus-rules.yaml"), strings.TrimPrefix(exp.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address=127.0.0.1:"+port)
	logs, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			data, _ := os.ReadFile(logs.Name())
			t.Logf("prometheus log:\n%s", data)
		}
	}()
	api := "http://127.0.0.1:" + port

	// The stored series, once scraped, against the report's certificates.
	var series []promSample
	waitFor(t, 60*time.Second, "Prometheus to store the certificate series", func() bool {
		series = query(t, api, "kubepki_certificate_not_after_timestamp_seconds")
		return len(series) > 0
	})
	want := map[string]int64{}
	mu.Lock()
	certs := last.Certificates
	mu.Unlock()
	for _, c := range certs {
		want[c.Path+"#"+strconv.Itoa(c.Index)] = c.NotAfter.Unix()
	}
	if len(series) != len(want) {
		t.Errorf("Prometheus holds %d series, the report %d certificates", len(series), len(want))
	}
	for _, s := range series {
		key := s.Metric["path"] + "#" + s.Metric["index"]
		if got, ok := want[key]; !ok || s.value(t) != float64(got) {
			t.Errorf("%s: Prometheus has %v, the certificate says %d", key, s.value(t), got)
		}
	}

	// Every rule loads and evaluates; the alerts the sample node deserves
	// become pending or firing.
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	waitFor(t, 30*time.Second, "every rule to be evaluated", func() bool {
		get(t, api+"/api/v1/rules", &rules)
		n := 0
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				if r.Health != "ok" {
					return false
				}
				n++
			}
		}
		return n >= 5
	})
	for _, want := range []string{"KubernetesCertificateExpired", "KubernetesCertificateExpiringSoon", "KubepkiCriticalFinding"} {
		waitFor(t, 30*time.Second, want+" to become active", func() bool {
			var alerts struct {
				Data struct {
					Alerts []struct {
						Labels map[string]string
						State  string
					}
				}
			}
			get(t, api+"/api/v1/alerts", &alerts)
			for _, a := range alerts.Data.Alerts {
				if a.Labels["alertname"] == want && (a.State == "pending" || a.State == "firing") {
					return true
				}
			}
			return false
		})
	}
}

type promSample struct {
	Metric map[string]string
	Value  [2]any
}

func (s promSample) value(t *testing.T) float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample %v: %v", s.Value, err)
	}
	return v
}

func query(t *testing.T, api, q string) []promSample {
	var out struct {
		Data struct{ Result []promSample }
	}
	get(t, api+"/api/v1/query?query="+url.QueryEscape(q), &out)
	return out.Data.Result
}

// get decodes a Prometheus API answer; a server not up yet is no answer.
func get(t *testing.T, u string, v any) {
	resp, err := http.Get(u)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
