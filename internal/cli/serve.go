package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/revocation/kubestore"
	"github.com/kubepki/kubepki/internal/webhook"
)

func newServeCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run kubepki as a server: the revocation webhook, the Prometheus exporter or the issued-credential ledger",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newServeWebhookCommand(e), newServeExporterCommand(e), newServeLedgerCommand(e))
	return cmd
}

type serveWebhookOptions struct {
	listen, cert, key, clientCA string
	clientNames                 []string
	insecureAnyClient           bool
	allowEmpty                  bool
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
the webhook (Node, RBAC) decide as before. /deny denies every request it is sent: the
static configuration (kubepki revoke config --static) sends it only the revoked IDs it
names, so its decisions never depend on the list this server holds.

The list file must exist (kubepki revoke init): a missing file stops the start, unless
--allow-empty-list. It is re-read when it changes, without a restart; a file that
disappears, cannot be read or does not parse keeps the list loaded before in force, is
logged at error, and sets kubepki_revocation_list_stale to 1. With --backend kubernetes,
the list is the RevokedCredential objects of the cluster (deploy/crd.yaml), watched, so
several replicas share one list; a failing watch is reported the same way.

/authorize and /deny answer only callers with a client certificate signed by
--client-ca-file (the apiserver's, from the webhook kubeconfig), and with
--allowed-client-names only those names; --insecure-allow-any-client opts out.
/healthz, /readyz and /metrics (Prometheus) are served beside them, to anyone.`,
		Example: `  kubepki serve webhook --tls-cert-file tls.crt --tls-key-file tls.key \
    --client-ca-file /etc/kubernetes/pki/ca.crt --allowed-client-names kube-apiserver-kubelet-client \
    --store /var/lib/kubepki/revoked.json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.cert == "" || o.key == "" {
				return usagef("--tls-cert-file and --tls-key-file are required: the apiserver only calls webhooks over TLS")
			}
			if o.reload <= 0 {
				return usagef("--reload-interval must be positive")
			}
			if o.clientCA == "" && !o.insecureAnyClient {
				return usagef("--client-ca-file is required: without it anyone who reaches the port can ask which credentials are revoked (--insecure-allow-any-client to serve them all anyway)")
			}
			if o.clientCA != "" && o.insecureAnyClient {
				return usagef("--client-ca-file and --insecure-allow-any-client contradict each other")
			}
			if err := o.store.validate(); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(e.stderr, nil))
			opts := webhook.ServerOptions{
				Addr: o.listen, CertFile: o.cert, KeyFile: o.key,
				ClientCAFile: o.clientCA, AllowedClientNames: o.clientNames, InsecureAllowAnyClient: o.insecureAnyClient,
				Store: revocation.FileStore{Path: o.store.path}, AllowEmptyList: o.allowEmpty, ReloadInterval: o.reload, Log: log,
			}
			if o.store.backend == "kubernetes" {
				ks, err := o.store.kubernetes()
				if err != nil {
					return err
				}
				opts.Source = func(ctx context.Context, update func(*revocation.List), failing func(error)) error {
					return ks.Watch(ctx, 100*time.Millisecond, kubestore.Handlers{
						Update: update,
						Skipped: func(err error) {
							log.Warn("a RevokedCredential does not decode (its credential ID, when it has one, stays revoked)", "err", err)
						},
						Failing: failing,
					})
				}
			}
			srv, err := webhook.NewServer(opts)
			if err != nil {
				return err
			}
			return srv.Run(e.ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":8443", "address to serve on")
	f.StringVar(&o.cert, "tls-cert-file", "", "serving certificate (PEM)")
	f.StringVar(&o.key, "tls-key-file", "", "serving key (PEM)")
	f.StringVar(&o.clientCA, "client-ca-file", "", "answer /authorize and /deny only to clients with a certificate signed by this CA (required)")
	f.StringSliceVar(&o.clientNames, "allowed-client-names", nil, "with --client-ca-file: the only client certificate common names accepted")
	f.BoolVar(&o.insecureAnyClient, "insecure-allow-any-client", false, "answer /authorize and /deny to anyone who reaches the port")
	f.BoolVar(&o.allowEmpty, "allow-empty-list", false, "start with nothing revoked when the list file does not exist yet")
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	f.DurationVar(&o.reload, "reload-interval", time.Second, "how often to check the list file for changes")
	return cmd
}
