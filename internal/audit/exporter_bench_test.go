package audit_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
	"github.com/kubepki/kubepki/internal/exporter"
	"github.com/kubepki/kubepki/internal/report"
)

// The exporter benchmarks measure a real HTTP scrape of `kubepki serve
// exporter` three ways, over the same series:
//
//   - Constant: a handler serving metric families gathered once, so the
//     scrape costs only the HTTP round trip and the text encoding. The
//     baseline.
//   - Periodic: the exporter in --interval mode, serving the last scan.
//   - AtScrape: the exporter scanning at every scrape (no --interval).
//
// Node1000 is a node holding 1,000 certificates; Cluster10000 a real
// apiserver holding 10,000 CSRs with issued certificates (root only).

const (
	exporterNodeCerts    = 1000
	exporterClusterCerts = 10000
)

func BenchmarkExporter(b *testing.B) {
	b.Run("Node1000", func(b *testing.B) {
		root := nodeWithCerts(b, exporterNodeCerts-1) // and the CA
		benchScrapes(b, exporterNodeCerts, func(ctx context.Context) (*report.Report, error) {
			return audit.Node(ctx, audit.NodeOptions{Root: root, Now: time.Now().UTC(), Policy: checks.DefaultPolicy()}), nil
		})
	})
	b.Run("Cluster10000", func(b *testing.B) {
		cfg := issued.start(b, func(cfg *rest.Config, dir string) (int, error) {
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return 0, err
			}
			return exporterClusterCerts, loadIssuedCSRs(context.Background(), cs, dir, exporterClusterCerts)
		})
		benchScrapes(b, exporterClusterCerts, func(ctx context.Context) (*report.Report, error) {
			return audit.Cluster(ctx, audit.ClusterOptions{Config: cfg, Context: "bench", Now: time.Now().UTC(), Policy: checks.DefaultPolicy()})
		})
	})
}

// benchScrapes runs the three scrapes of one target, the baseline first.
func benchScrapes(b *testing.B, wantCerts int, scan exporter.Scan) {
	periodic := exporter.NewPeriodic(scan, 5*time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One scan, then Run's ticker never fires within the benchmark.
	go periodic.Run(ctx, time.Hour)
	for deadline := time.Now().Add(5 * time.Minute); countCerts(b, periodic) < wantCerts; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the periodic exporter did not finish its first scan")
		}
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(periodic)
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	constant := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, nil })

	atScrape := prometheus.NewPedanticRegistry()
	atScrape.MustRegister(exporter.New(scan, 5*time.Minute))

	b.Run("Constant", func(b *testing.B) { benchScrape(b, constant) })
	b.Run("Periodic", func(b *testing.B) { benchScrape(b, reg) })
	b.Run("AtScrape", func(b *testing.B) { benchScrape(b, atScrape) })
}

func countCerts(b *testing.B, c prometheus.Collector) int {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		b.Error(err)
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == "kubepki_certificate_not_after_timestamp_seconds" {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// benchScrape scrapes g over loopback HTTP as Prometheus does, reading the
// whole body, and reports its size.
func benchScrape(b *testing.B, g prometheus.Gatherer) {
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	client := srv.Client()
	var size int64
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept", "text/plain;version=0.0.4")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		size, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("scrape: %d %v", resp.StatusCode, err)
		}
	}
	b.ReportMetric(float64(size)/1024, "KiB/scrape")
}
