package cli

import (
	"bytes"
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
	controlPlane                                                revocation.ControlPlane
	store                                                       storeFlags
	kube                                                        kubeFlags
	authorizedTTL, unauthorizedTTL, timeout                     time.Duration
	// authentication is an AuthenticationConfiguration file to write
	// the revoked JWTs and subjects into.
	authentication string
	// force writes it even when values it refused are refused no more
	// without the list saying they were unrevoked; allowUnknownIssuers
	// even when revoked subjects of an issuer it does not trust are left
	// out.
	force, allowUnknownIssuers bool
}

func newRevokeConfigCommand(e *env) *cobra.Command {
	o := &revokeConfigOptions{controlPlane: revocation.DefaultControlPlane()}
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write the kube-apiserver configuration that puts the revocation webhook first",
		Long: `Writes, into --out, what kube-apiserver needs to enforce the revocation list:
authorization.yaml, an AuthorizationConfiguration with the webhook before Node and RBAC
and a match condition that sends it only requests carrying a credential ID;
kubepki-webhook.kubeconfig, how to reach the webhook, presenting the apiserver's client
certificate (by default kubeadm's apiserver-kubelet-client: run the webhook with
--client-ca-file /etc/kubernetes/pki/ca.crt --allowed-client-names
kube-apiserver-kubelet-client); and legacy-flags.txt, the equivalent flags for clusters
without --authorization-config, with what they cannot do. Nothing kube-apiserver would
refuse is written: what the flags control is checked first, and kubepki's tests hold
every configuration it can write against kube-apiserver's own validator.

failurePolicy (dynamic mode): NoOpinion keeps the cluster working when the webhook is
down, but revoked credentials then work again. Deny refuses every request that carries a
credential ID while the webhook is down, except the control plane's own identities
(--control-plane-users, --control-plane-user-prefixes, --control-plane-groups; by
default the controller-manager, the scheduler, kubelets and the in-cluster webhook's
service account): their requests go to a second webhook authorizer with NoOpinion, so
the cluster, and the webhook's own watch, keep running. Their credentials are still
refused when revoked while the webhook is up, but not while it is down.

With --static, the revoked IDs of --store are written into the configuration itself,
split across authorizers of ` + fmt.Sprint(revocation.IDsPerAuthorizer) + ` IDs, each calling the webhook's /deny with
failurePolicy Deny: only requests made with a revoked credential reach it, and they are
refused whatever list the webhook holds, and even when it is down. Regenerate after each
revocation; the apiserver reloads the file within a minute.

With --authentication FILE, the revoked tokens of JWT (OIDC) issuers are refused by
kube-apiserver's authenticator itself: every JWT authenticator of the
AuthenticationConfiguration FILE gets claim validation rules refusing the revoked token
IDs (JTI=<jti>) and the revoked subjects (SUB=<issuer>#<sub>, or SUB=#<sub> for every
issuer: all tokens of a person who left). Rules kubepki wrote before are replaced; the
file's own rules are kept. FILE is rewritten in place (or into --out), atomically, and
only when kube-apiserver would accept it: the apiserver reloads it within a minute, and a
file it refused would leave the previous rules in force. Comments in FILE are not kept.
A token without a jti cannot be singled out: revoke its subject.`,
		Example: `  kubepki revoke config --webhook-url https://127.0.0.1:8443 --webhook-ca-file ca.crt --out /etc/kubernetes/kubepki
  kubepki revoke config --failure-policy Deny --webhook-url https://127.0.0.1:8443 --webhook-ca-file ca.crt --out dir
  kubepki revoke config --static --store /var/lib/kubepki/revoked.json --webhook-url https://127.0.0.1:8443 --webhook-ca-file ca.crt --out dir
  kubepki revoke --id 'SUB=https://login.example.com#4f1c…' --reason "left the company"
  kubepki revoke config --authentication /etc/kubernetes/authentication.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.authentication != "" {
				return o.writeAuthentication(e, cmd)
			}
			if o.force || o.allowUnknownIssuers {
				return usagef("--force and --allow-unknown-issuers go with --authentication")
			}
			if o.url == "" || o.caFile == "" || o.out == "" {
				return usagef("--webhook-url, --webhook-ca-file and --out are required")
			}
			if _, err := revocation.Endpoint(o.url, revocation.AuthorizePath); err != nil {
				return usagef("--webhook-url: %v (the apiserver calls webhooks over TLS)", err)
			}
			if o.certFile == "" || o.keyFile == "" || !filepath.IsAbs(o.certFile) || !filepath.IsAbs(o.keyFile) {
				return usagef("--client-cert-file and --client-key-file are required, as absolute paths the apiserver reads: the webhook answers only the apiserver")
			}
			if o.policy != revocation.FailureNoOpinion && o.policy != revocation.FailureDeny {
				return usagef("--failure-policy must be %s or %s, not %q", revocation.FailureNoOpinion, revocation.FailureDeny, o.policy)
			}
			ca, err := os.ReadFile(o.caFile)
			if err != nil {
				return err
			}
			if _, err := revocation.TrustFromPEM(o.caFile, ca, nil, nil); err != nil || len(ca) == 0 {
				return fmt.Errorf("--webhook-ca-file %s: no PEM certificate (%v)", o.caFile, err)
			}
			opts := revocation.ConfigOptions{
				WebhookURL: o.url, WebhookCA: ca, ClientCertFile: o.certFile, ClientKeyFile: o.keyFile,
				KubeconfigPath: o.kubeconfigPath, FailurePolicy: o.policy, ControlPlane: o.controlPlane,
				AuthorizedTTL: o.authorizedTTL, UnauthorizedTTL: o.unauthorizedTTL, Timeout: o.timeout,
			}
			if err := opts.Check(); err != nil {
				return usagef("%v", err)
			}
			subjects := 0
			if o.static {
				l, err := o.store.load()
				if err != nil {
					return err
				}
				for _, id := range l.ActiveIDs() {
					if revocation.IsCredentialID(id) {
						opts.Static = append(opts.Static, id)
					} else {
						subjects++
					}
				}
				if opts.Static == nil {
					opts.Static = []string{}
				}
			}
			files, err := revocation.Config(opts)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(o.out, 0o700); err != nil {
				return err
			}
			for _, f := range files {
				if err := revocation.WriteAtomic(filepath.Join(o.out, f.Name), 0o600, func(w io.Writer) error { _, err := w.Write(f.Data); return err }); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "wrote %s/{authorization.yaml,kubepki-webhook.kubeconfig,legacy-flags.txt}\n", o.out)
			fmt.Fprintf(e.stdout, "copy kubepki-webhook.kubeconfig to %s on each control-plane node, and run kube-apiserver with --authorization-config=<path of authorization.yaml> instead of --authorization-mode\n", o.kubeconfigPath)
			fmt.Fprintf(e.stdout, "the apiserver presents %s to the webhook: run it with --client-ca-file set to that certificate's CA and --allowed-client-names set to its common name\n", o.certFile)
			if subjects > 0 {
				// No request carries a subject: only the authenticator
				// can refuse one.
				fmt.Fprintf(e.stdout, "%d revoked subjects (SUB=) are not in this configuration, since no request carries them: write them with revoke config --authentication FILE\n", subjects)
			}
			switch {
			case o.static && len(opts.Static) == 0 && subjects > 0:
				fmt.Fprintf(e.stdout, "static mode: %s revoke no certificate or token ID, so the configuration has no webhook authorizer (Node and RBAC alone)\n", o.store.where())
			case o.static && len(opts.Static) == 0:
				fmt.Fprintf(e.stdout, "static mode: %s revoke nothing, so the configuration has no webhook authorizer (Node and RBAC alone): nothing is refused by ID until a revocation is made and the configuration written again\n", o.store.where())
			case o.static:
				fmt.Fprintf(e.stdout, "static mode: %d revoked IDs in %d authorizers calling /deny, failurePolicy Deny: they are refused whatever the webhook holds, and while it is down\n",
					len(opts.Static), bytes.Count(files[0].Data, []byte("failurePolicy: Deny")))
			case o.policy == revocation.FailureDeny:
				fmt.Fprintf(e.stdout, "failurePolicy Deny: while the webhook is down, every request with a credential ID is refused, except those of %s, which go on to Node and RBAC; a revoked credential of theirs works while the webhook is down\n", o.controlPlane.Describe())
			default:
				fmt.Fprintln(e.stdout, "failurePolicy NoOpinion: while the webhook is down, revoked credentials work again; watch kubepki_webhook_decisions_total and the apiserver's webhook errors")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "webhook-url", "", "the webhook's URL as the apiserver reaches it (https://host:port, or its /authorize URL)")
	f.StringVar(&o.caFile, "webhook-ca-file", "", "CA that signed the webhook's serving certificate")
	f.StringVar(&o.certFile, "client-cert-file", "/etc/kubernetes/pki/apiserver-kubelet-client.crt", "client certificate the apiserver presents to the webhook (a path the apiserver reads)")
	f.StringVar(&o.keyFile, "client-key-file", "/etc/kubernetes/pki/apiserver-kubelet-client.key", "its key (a path the apiserver reads; not copied)")
	f.StringVar(&o.out, "out", "", "directory to write the files into")
	f.StringVar(&o.kubeconfigPath, "kubeconfig-path", "/etc/kubernetes/kubepki-webhook.kubeconfig", "where the apiserver will read the webhook kubeconfig")
	f.StringVar(&o.policy, "failure-policy", revocation.FailureNoOpinion, "dynamic mode: NoOpinion or Deny when the webhook cannot be reached")
	f.StringSliceVar(&o.controlPlane.Users, "control-plane-users", o.controlPlane.Users, "with --failure-policy Deny: users kept working while the webhook is down")
	f.StringSliceVar(&o.controlPlane.UserPrefixes, "control-plane-user-prefixes", o.controlPlane.UserPrefixes, "with --failure-policy Deny: user name prefixes kept working while the webhook is down")
	f.StringSliceVar(&o.controlPlane.Groups, "control-plane-groups", o.controlPlane.Groups, "with --failure-policy Deny: groups kept working while the webhook is down")
	f.BoolVar(&o.static, "static", false, "embed the revoked IDs in the configuration (fails closed for them alone)")
	f.BoolVar(&o.force, "force", false, "with --authentication: write even when values the file's kubepki rules refuse are neither revoked nor unrevoked in the list")
	f.BoolVar(&o.allowUnknownIssuers, "allow-unknown-issuers", false, "with --authentication: write even when revoked subjects name an issuer no JWT authenticator trusts (they are left out)")
	f.StringVar(&o.authentication, "authentication", "", "AuthenticationConfiguration file whose JWT authenticators are to refuse the revoked tokens and subjects (rewritten in place, or into --out)")
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	f.DurationVar(&o.authorizedTTL, "authorized-ttl", 10*time.Second, "how long the apiserver caches an allow")
	f.DurationVar(&o.unauthorizedTTL, "unauthorized-ttl", 10*time.Second, "how long it caches a denial or no opinion: the longest a revocation waits")
	f.DurationVar(&o.timeout, "timeout", 3*time.Second, "webhook call timeout (at most 30s)")
	return cmd
}

// writeAuthentication writes the revoked JWTs and subjects of the list
// into the AuthenticationConfiguration file.
func (o *revokeConfigOptions) writeAuthentication(e *env, cmd *cobra.Command) error {
	if o.static || o.url != "" || o.caFile != "" {
		return usagef("--authentication writes only the AuthenticationConfiguration: leave out --static, --webhook-url and --webhook-ca-file")
	}
	for _, name := range []string{"failure-policy", "control-plane-users", "control-plane-user-prefixes", "control-plane-groups", "authorized-ttl", "unauthorized-ttl", "timeout", "client-cert-file", "client-key-file", "kubeconfig-path"} {
		if cmd.Flags().Changed(name) {
			return usagef("--%s configures the webhook authorizer, which --authentication does not write: leave it out", name)
		}
	}
	data, err := os.ReadFile(o.authentication)
	if err != nil {
		return err
	}
	l, err := o.store.load()
	if err != nil {
		return err
	}
	written, sum, err := revocation.AuthenticationConfig(data, l.ActiveIDs())
	if err != nil {
		return fmt.Errorf("%s: %w", o.authentication, err)
	}
	if len(sum.UnknownIssuers) > 0 && !o.allowUnknownIssuers {
		var msgs []string
		for _, iss := range sum.UnknownIssuers {
			m := fmt.Sprintf("%q", iss)
			if n := nearestIssuer(iss, sum.Issuers); n != "" {
				m += fmt.Sprintf(" (did you mean %q?)", n)
			}
			msgs = append(msgs, m)
		}
		return fmt.Errorf("%s: no JWT authenticator trusts the issuer of revoked subjects %s: their tokens would not be refused; revoke the subject under the issuer URL exactly as the file names it (or SUB=#<sub> for every issuer), or pass --allow-unknown-issuers; the file is left as it was", o.authentication, strings.Join(msgs, ", "))
	}
	// Values the file refused and refuses no more: fine when the list
	// says they were unrevoked; otherwise the list may be the wrong one,
	// or empty, and writing would silently drop revocations.
	var unexplained []string
	for _, id := range sum.Removed {
		if !unrevokedIn(l, id) {
			unexplained = append(unexplained, id)
		}
	}
	if len(unexplained) > 0 && !o.force {
		return fmt.Errorf("%s: %d values its kubepki rules refuse are not revoked in %s (nor unrevoked there): %s; is it the right list? Pass --force to stop refusing them; the file is left as it was", o.authentication, len(unexplained), o.store.where(), listSome(unexplained, 10))
	}
	dst := o.authentication
	if o.out != "" {
		if err := os.MkdirAll(o.out, 0o700); err != nil {
			return err
		}
		dst = filepath.Join(o.out, filepath.Base(o.authentication))
	}
	mode := os.FileMode(0o600)
	if info, err := os.Stat(o.authentication); err == nil {
		mode = info.Mode().Perm()
	}
	// Another writer (a second kubepki, an editor) may have changed the
	// file since it was read: writing would undo that change.
	if now, err := os.ReadFile(o.authentication); err != nil || !bytes.Equal(now, data) {
		return fmt.Errorf("%s changed while kubepki was writing it: run revoke config --authentication again", o.authentication)
	}
	if err := revocation.WriteAtomic(dst, mode, func(w io.Writer) error { _, err := w.Write(written); return err }); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s: %d revoked token IDs and %d revoked subjects refused by %d of its JWT authenticators\n", dst, sum.JTIs, sum.Subjects, sum.Authenticators)
	sa := 0
	for _, id := range l.ActiveIDs() {
		if en, ok := l.Get(id); ok && strings.HasPrefix(id, revocation.PrefixJTI) && strings.HasPrefix(en.Subject, "system:serviceaccount:") {
			sa++
		}
	}
	if sa > 0 {
		fmt.Fprintf(e.stdout, "%d of the token IDs are recorded as service-account tokens, which no JWT authenticator accepts: the webhook refuses them; they are written too, since their record comes from claims that may not have been verified\n", sa)
	}
	fmt.Fprintln(e.stdout, "kube-apiserver reloads the file within a minute (at once when it sees the change) and keeps a token's earlier success for 10 s; tokens without a jti cannot be refused by ID, only by subject (SUB=)")
	for _, iss := range sum.UnknownIssuers {
		fmt.Fprintf(e.stdout, "warning: revoked subjects of %s are not written: no JWT authenticator of %s trusts that issuer\n", iss, o.authentication)
	}
	if len(sum.Removed) > 0 {
		fmt.Fprintf(e.stdout, "no longer refused (%d): %s\n", len(sum.Removed), listSome(sum.Removed, 20))
	}
	return nil
}

// unrevokedIn reports whether the list says an ID the file refused was
// unrevoked: SUB=<issuer>#<sub> may have been revoked as SUB=#<sub>.
func unrevokedIn(l *revocation.List, id string) bool {
	ids := []string{id}
	if _, sub, ok := revocation.SplitSubject(id); ok {
		ids = append(ids, revocation.PrefixSubject+"#"+sub)
	}
	for _, id := range ids {
		if e, ok := l.Get(id); ok && e.Unrevoked != nil {
			return true
		}
	}
	return false
}

// listSome lists at most n values, saying how many more there are.
func listSome(values []string, n int) string {
	if len(values) <= n {
		return strings.Join(values, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(values[:n], ", "), len(values)-n)
}

// nearestIssuer is the configured issuer closest to iss (the same but for
// a trailing slash, letter case or a few characters), or "".
func nearestIssuer(iss string, issuers []string) string {
	best, bestD := "", len(iss)/4+2
	for _, c := range issuers {
		if d := editDistance(strings.ToLower(iss), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
