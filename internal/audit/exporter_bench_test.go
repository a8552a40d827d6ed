package audit_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
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
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
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
		}, nil)
	})
	b.Run("Cluster10000", func(b *testing.B) {
		cfg := issued.start(b, func(cfg *rest.Config, dir string) (int, error) {
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return 0, err
			}
			if err := loadIssuedCSRs(context.Background(), cs, dir, exporterClusterCerts); err != nil {
				return 0, err
			}
			return 2 * exporterClusterCerts, loadLedger(context.Background(), cfg, dir, exporterClusterCerts)
		})
		lg, err := kubestore.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		scan := func(ctx context.Context) (*report.Report, error) {
			return audit.Cluster(ctx, audit.ClusterOptions{Config: cfg, Context: "bench", Now: time.Now().UTC(), Policy: checks.DefaultPolicy(), Ledger: lg})
		}
		// The cluster exporter's default: certificates from watches,
		// findings from the periodic scan.
		watched := func(b *testing.B) prometheus.Gatherer {
			findings := exporter.NewPeriodic(func(ctx context.Context) (*report.Report, error) {
				return audit.Cluster(ctx, audit.ClusterOptions{Config: cfg, Context: "bench", Now: time.Now().UTC(), Policy: checks.DefaultPolicy()})
			}, 5*time.Minute).WithoutCertificates()
			ctx, cancel := context.WithCancel(context.Background())
			b.Cleanup(cancel)
			findings.Refresh(ctx)
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(findings)
			set := exporter.NewCertificateSet()
			goruntime.GC()
			var before, after goruntime.MemStats
			goruntime.ReadMemStats(&before)
			start := time.Now()
			go audit.WatchCertificates(ctx, audit.WatchOptions{Config: cfg, Target: "bench", Ledger: lg, Policy: checks.DefaultPolicy(), Set: set})
			for set.Len() < 2*exporterClusterCerts {
				if time.Since(start) > 5*time.Minute {
					b.Fatalf("the watch holds %d certificates after 5 minutes", set.Len())
				}
				time.Sleep(10 * time.Millisecond)
			}
			synced := time.Since(start)
			goruntime.GC()
			goruntime.ReadMemStats(&after)
			watchHeap = float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / (1 << 20)
			watchSync = synced.Seconds()
			return set.WithFindings(reg)
		}
		benchScrapes(b, 2*exporterClusterCerts, scan, watched)
	})
}

// watchHeap and watchSync are what the watch of the last Watched
// benchmark held (MiB) and took to sync (s), reported with it.
var watchHeap, watchSync float64

// benchScrapes runs the scrapes of one target, the baseline first; watched,
// when set, makes the gatherer of the watch-fed exporter.
func benchScrapes(b *testing.B, wantCerts int, scan exporter.Scan, watched func(*testing.B) prometheus.Gatherer) {
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
	if watched != nil {
		g := watched(b)
		if n := countCerts(b, prometheus.GathererFunc(g.Gather)); n != wantCerts {
			b.Fatalf("the watched exporter serves %d certificates, want %d", n, wantCerts)
		}
		b.Run("Watched", func(b *testing.B) {
			benchScrape(b, g)
			b.ReportMetric(watchHeap, "watch-heap-MiB")
			b.ReportMetric(watchSync, "watch-sync-s")
		})
	}
}

func countCerts(b *testing.B, g any) int {
	var mfs []*dto.MetricFamily
	var err error
	switch g := g.(type) {
	case prometheus.Gatherer:
		mfs, err = g.Gather()
	case prometheus.Collector:
		reg := prometheus.NewRegistry()
		reg.MustRegister(g)
		mfs, err = reg.Gather()
	}
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
