package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/exporter"
	"github.com/kubepki/kubepki/internal/httpserve"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/report"
)

type serveExporterOptions struct {
	listen, mode, root string
	interval, timeout  time.Duration
	kube               kubeFlags
	policy             string
	watch              bool
}

func newServeExporterCommand(e *env) *cobra.Command {
	o := &serveExporterOptions{}
	cmd := &cobra.Command{
		Use:   "exporter",
		Short: "Serve Prometheus metrics: certificate expiry timestamps, findings by severity, scan health",
		Long: `Serves /metrics for Prometheus: kubepki_certificate_not_after_timestamp_seconds,
kubepki_certificate_not_before_timestamp_seconds and kubepki_certificate_expiry_window_seconds
(the policy's expiry window for it: --policy FILE, else the default) for every certificate
(labels: target, path or object, source, subject, issuer, is_ca, credential_id),
kubepki_findings by target, status, severity and PCI item, and the last scan's duration
and success.
--mode node audits the node's files under --root; --mode cluster audits the cluster of
the kubeconfig flags (in a pod: its service account). With --interval 0 a scan runs at
each scrape; otherwise every --interval, and scrapes read the last result. In cluster mode
the certificates (those of issued CSRs, and those the issued-credential ledger keeps after
their CSR is gone) come from watches instead (--watch, the default): a scrape serves them
as they are at that moment, whatever --interval, and the scans serve the findings.
deploy/prometheus-rules.yaml has alert rules for expiring CAs and leaves.`,
		Example: `  kubepki serve exporter --mode node --root /host
  kubepki serve exporter --mode cluster --interval 5m`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			pol := policy.Default()
			if o.policy != "" {
				var err error
				if pol, err = policy.Load(o.policy); err != nil {
					return fmt.Errorf("--policy: %w", err)
				}
			}
			var scan exporter.Scan
			var certs *exporter.CertificateSet
			var watch func(*slog.Logger, audit.WatchStatus) error
			switch o.mode {
			case "node":
				if err := checkRoot(o.root); err != nil {
					return err
				}
				scan = func(ctx context.Context) (*report.Report, error) {
					return audit.Node(ctx, audit.NodeOptions{Root: o.root, Now: e.now().UTC(), Policy: pol}), nil
				}
			case "cluster":
				cfg, name, err := o.kube.config()
				if err != nil {
					return fmt.Errorf("loading the cluster configuration: %w", err)
				}
				// The ledger's certificates whose CSR is gone, when the
				// cluster keeps a ledger.
				ks, err := kubestore.New(cfg)
				if err != nil {
					return err
				}
				var lg ledger.Store = ks
				if o.watch {
					certs = exporter.NewCertificateSet()
					target := name
					if target == "" {
						target = cfg.Host
					}
					watch = func(log *slog.Logger, status audit.WatchStatus) error {
						return audit.WatchCertificates(e.ctx, audit.WatchOptions{Config: cfg, Target: target, Ledger: ks, Policy: pol, Set: certs, Status: status, Log: log})
					}
					lg = nil // the scans serve findings only
				}
				scan = func(ctx context.Context) (*report.Report, error) {
					opts := audit.ClusterOptions{Config: cfg, Context: name, Now: e.now().UTC(), Policy: pol}
					if lg != nil {
						opts.Ledger, opts.LedgerOptional = lg, true
					}
					return audit.Cluster(ctx, opts)
				}
			default:
				return usagef("--mode must be node or cluster, not %q", o.mode)
			}
			if o.interval < 0 || o.timeout <= 0 {
				return usagef("--interval must not be negative and --timeout must be positive")
			}
			var col *exporter.Collector
			if o.interval == 0 {
				col = exporter.New(scan, o.timeout)
			} else {
				col = exporter.NewPeriodic(scan, o.timeout)
				go col.Run(e.ctx, o.interval)
			}
			reg := prometheus.NewRegistry()
			var g prometheus.Gatherer = reg
			log := slog.New(slog.NewTextHandler(e.stderr, nil))
			// watchStopped holds why the certificate watch ended before
			// the exporter did: /healthz then fails, so that the exporter
			// is restarted rather than serve no certificates.
			var watchStopped atomic.Pointer[string]
			if certs != nil {
				reg.MustRegister(col.WithoutCertificates())
				g = certs.WithFindings(reg)
				status := exporter.NewWatchMetrics(reg)
				go func() {
					err := watch(log, status)
					if e.ctx.Err() != nil {
						return
					}
					why := "the certificate watch stopped"
					if err != nil {
						why += ": " + err.Error()
					}
					log.Error(why + "; the certificates are not served and /healthz fails")
					watchStopped.Store(&why)
				}()
			} else {
				reg.MustRegister(col)
			}
			mux := http.NewServeMux()
			mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{Timeout: o.timeout + 5*time.Second}))
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
				if why := watchStopped.Load(); why != nil {
					http.Error(w, *why, http.StatusServiceUnavailable)
					return
				}
				w.Write([]byte("ok\n"))
			})
			srv := &http.Server{Addr: o.listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: o.timeout + 10*time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
			ln, err := net.Listen("tcp", o.listen)
			if err != nil {
				return err
			}
			log.Info("serving metrics", "addr", ln.Addr().String(), "mode", o.mode, "policy", pol.Source)
			return httpserve.Run(e.ctx, srv, ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":9633", "address to serve metrics on")
	f.StringVar(&o.mode, "mode", "node", "what to scan: node (files under --root) or cluster (the API)")
	f.StringVar(&o.root, "root", "/", "with --mode node: the directory that stands for the node's /")
	f.DurationVar(&o.interval, "interval", 0, "scan every interval and serve the last result; 0 scans at each scrape")
	f.DurationVar(&o.timeout, "timeout", time.Minute, "time limit of one scan")
	f.StringVar(&o.policy, "policy", "", "YAML policy file (kind Policy) to judge by; default: what 'kubepki policy default' prints")
	f.BoolVar(&o.watch, "watch", true, "with --mode cluster: serve the certificates (issued CSRs, the ledger) from watches, current at every scrape; the scans serve findings")
	o.kube.register(cmd)
	return cmd
}
