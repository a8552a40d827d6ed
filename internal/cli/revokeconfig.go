package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/revocation"
)

type revokeConfigOptions struct {
	url, caFile, certFile, keyFile, out, kubeconfigPath, policy string
	static                                                      bool
	store                                                       storeFlags
	kube                                                        kubeFlags
	authorizedTTL, unauthorizedTTL, timeout                     time.Duration
}

func newRevokeConfigCommand(e *env) *cobra.Command {
	o := &revokeConfigOptions{}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write the kube-apiserver configuration that puts the revocation webhook first",
		Long: `Writes, into --out, what kube-apiserver needs to enforce the revocation list:
authorization.yaml, an AuthorizationConfiguration with the webhook before Node and RBAC
and a match condition that sends it only requests carrying a credential ID;
kubepki-webhook.kubeconfig, how to reach the webhook; and legacy-flags.txt, the
equivalent flags for clusters without --authorization-config.

With --static, the revoked IDs of --store are written into the configuration itself,
split across authorizers of ` + fmt.Sprint(revocation.IDsPerAuthorizer) + ` IDs: only requests made with a revoked
credential reach the webhook, with failurePolicy Deny, so they are refused even when
the webhook is down, and nothing else depends on it. Regenerate after each revocation;
the apiserver reloads the file.

failurePolicy (dynamic mode): NoOpinion keeps the cluster working when the webhook is
down, but revoked credentials then work again; Deny refuses every request that carries
a credential ID (nearly all) while the webhook is down.`,
		Example: `  kubepki revoke config --webhook-url https://127.0.0.1:8443/authorize --webhook-ca-file ca.crt --out /etc/kubernetes/kubepki
  kubepki revoke config --static --store /var/lib/kubepki/revoked.json --webhook-url … --webhook-ca-file ca.crt --out dir`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.url == "" || o.caFile == "" || o.out == "" {
				return usagef("--webhook-url, --webhook-ca-file and --out are required")
			}
			if !strings.HasPrefix(o.url, "https://") {
				return usagef("--webhook-url must be https: the apiserver calls webhooks over TLS")
			}
			if (o.certFile == "") != (o.keyFile == "") {
				return usagef("--client-cert-file and --client-key-file go together")
			}
			ca, err := os.ReadFile(o.caFile)
			if err != nil {
				return err
			}
			if _, err := certificates(ca); err != nil {
				return fmt.Errorf("--webhook-ca-file %s: %w", o.caFile, err)
			}
			opts := revocation.ConfigOptions{
				WebhookURL: o.url, WebhookCA: ca, KubeconfigPath: o.kubeconfigPath, FailurePolicy: o.policy,
				AuthorizedTTL: o.authorizedTTL, UnauthorizedTTL: o.unauthorizedTTL, Timeout: o.timeout,
			}
			if o.certFile != "" {
				if opts.ClientCert, err = os.ReadFile(o.certFile); err != nil {
					return err
				}
				if opts.ClientKey, err = os.ReadFile(o.keyFile); err != nil {
					return err
				}
			}
			if o.static {
				l, err := o.store.load()
				if err != nil {
					return err
				}
				opts.Static = append([]string{}, l.ActiveIDs()...)
				if len(opts.Static) == 0 {
					return fmt.Errorf("--static: %s revoke nothing, so the configuration would send the webhook no request; revoke first, or use the dynamic mode", o.store.where())
				}
			}
			authz, err := revocation.AuthorizationConfig(opts)
			if err != nil {
				return err
			}
			kc, err := revocation.WebhookKubeconfig(opts)
			if err != nil {
				return err
			}
			legacy := "# kube-apiserver flags for clusters without --authorization-config.\n# No match conditions: every request reaches the webhook.\n" + strings.Join(revocation.LegacyFlags(opts), "\n") + "\n"
			if err := os.MkdirAll(o.out, 0o700); err != nil {
				return err
			}
			for name, data := range map[string][]byte{"authorization.yaml": authz, "kubepki-webhook.kubeconfig": kc, "legacy-flags.txt": []byte(legacy)} {
				if err := revocation.WriteAtomic(filepath.Join(o.out, name), 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "wrote %s/{authorization.yaml,kubepki-webhook.kubeconfig,legacy-flags.txt}\n", o.out)
			fmt.Fprintf(e.stdout, "copy kubepki-webhook.kubeconfig to %s on each control-plane node, and run kube-apiserver with --authorization-config=<path of authorization.yaml> instead of --authorization-mode\n", o.kubeconfigPath)
			if o.static {
				fmt.Fprintf(e.stdout, "static mode: %d revoked IDs in %d authorizers, failurePolicy Deny\n", len(opts.Static), (len(opts.Static)+revocation.IDsPerAuthorizer-1)/revocation.IDsPerAuthorizer)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "webhook-url", "", "the webhook's /authorize URL as the apiserver reaches it")
	f.StringVar(&o.caFile, "webhook-ca-file", "", "CA that signed the webhook's serving certificate")
	f.StringVar(&o.certFile, "client-cert-file", "", "client certificate the apiserver presents to the webhook")
	f.StringVar(&o.keyFile, "client-key-file", "", "its key")
	f.StringVar(&o.out, "out", "", "directory to write the files into")
	f.StringVar(&o.kubeconfigPath, "kubeconfig-path", "/etc/kubernetes/kubepki-webhook.kubeconfig", "where the apiserver will read the webhook kubeconfig")
	f.StringVar(&o.policy, "failure-policy", "NoOpinion", "dynamic mode: NoOpinion or Deny when the webhook cannot be reached")
	f.BoolVar(&o.static, "static", false, "embed the revoked IDs in the configuration (fails closed for them alone)")
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	f.DurationVar(&o.authorizedTTL, "authorized-ttl", 10*time.Second, "how long the apiserver caches an allow")
	f.DurationVar(&o.unauthorizedTTL, "unauthorized-ttl", 10*time.Second, "how long it caches a denial or no opinion: the longest a revocation waits")
	f.DurationVar(&o.timeout, "timeout", 3*time.Second, "webhook call timeout")
	return cmd
}
