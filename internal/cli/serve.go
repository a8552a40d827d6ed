package cli

import (
	"context"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/webhook"
)

func newServeCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run kubepki as a server: the revocation webhook or the Prometheus exporter",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newServeWebhookCommand(e), newServeExporterCommand(e))
	return cmd
}

type serveWebhookOptions struct {
	listen, cert, key, clientCA string
	reload                      time.Duration
	store                       storeFlags
	kube                        kubeFlags
}

func newServeWebhookCommand(e *env) *cobra.Command {
	o := &serveWebhookOptions{}
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the revocation webhook: deny requests made with a revoked credential",
		Long: `Serves the SubjectAccessReview v1 endpoint /authorize over TLS. A request whose
credential ID (authentication.kubernetes.io/credential-id) is in the revocation list is
denied, with the reason; every other request gets no opinion, so the authorizers after
the webhook (Node, RBAC) decide as before. The list is re-read when its file changes,
without a restart; with --backend kubernetes, it is the RevokedCredential objects of the
cluster (deploy/crd.yaml), watched, so several replicas share one list. /healthz, /readyz and /metrics (Prometheus) are served beside it.
With --client-ca-file, /authorize answers only callers with a client certificate signed
by that CA (the apiserver's, from the webhook kubeconfig).`,
		Example: `  kubepki serve webhook --tls-cert-file tls.crt --tls-key-file tls.key --store /var/lib/kubepki/revoked.json`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.cert == "" || o.key == "" {
				return usagef("--tls-cert-file and --tls-key-file are required: the apiserver only calls webhooks over TLS")
			}
			if o.reload <= 0 {
				return usagef("--reload-interval must be positive")
			}
			if err := o.store.validate(); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(e.stderr, nil))
			opts := webhook.ServerOptions{
				Addr: o.listen, CertFile: o.cert, KeyFile: o.key, ClientCAFile: o.clientCA,
				Store: revocation.FileStore{Path: o.store.path}, ReloadInterval: o.reload, Log: log,
			}
			if o.store.backend == "kubernetes" {
				ks, err := o.store.kubernetes()
				if err != nil {
					return err
				}
				opts.Source = func(ctx context.Context, update func(*revocation.List)) error {
					return ks.Watch(ctx, 100*time.Millisecond, update, func(err error) { log.Warn("skipping a RevokedCredential", "err", err) })
				}
			}
			srv, err := webhook.NewServer(opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(e.ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":8443", "address to serve on")
	f.StringVar(&o.cert, "tls-cert-file", "", "serving certificate (PEM)")
	f.StringVar(&o.key, "tls-key-file", "", "serving key (PEM)")
	f.StringVar(&o.clientCA, "client-ca-file", "", "accept /authorize only from clients with a certificate signed by this CA")
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	f.DurationVar(&o.reload, "reload-interval", time.Second, "how often to check the list file for changes")
	return cmd
}
