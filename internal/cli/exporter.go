package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/exporter"
	"github.com/kubepki/kubepki/internal/httpserve"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/report"
)

type serveExporterOptions struct {
	listen, mode, root string
	interval, timeout  time.Duration
	kube               kubeFlags
	policy             string
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
each scrape; otherwise every --interval, and scrapes read the last result.
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
				lg, err := kubestore.New(cfg)
				if err != nil {
					return err
				}
				scan = func(ctx context.Context) (*report.Report, error) {
					return audit.Cluster(ctx, audit.ClusterOptions{Config: cfg, Context: name, Now: e.now().UTC(), Policy: pol, Ledger: lg, LedgerOptional: true})
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
			reg.MustRegister(col)
			mux := http.NewServeMux()
			mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Timeout: o.timeout + 5*time.Second}))
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
			log := slog.New(slog.NewTextHandler(e.stderr, nil))
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
	o.kube.register(cmd)
	return cmd
}
