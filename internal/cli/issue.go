package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/render/text"
)

type issueOptions struct {
	groups     []string
	ttl        time.Duration
	signer     string
	approve    bool
	wait       time.Duration
	format     string
	outputFile string
	csrName    string
	policy     string
	kube       kubeFlags
	ledger     ledgerFlags
}

// ledgerWait is how long kubepki issue waits for kubepki serve ledger to
// record the certificate it issued.
var ledgerWait = 15 * time.Second

func newIssueCommand(e *env) *cobra.Command {
	o := &issueOptions{}
	cmd := &cobra.Command{
		Use:   "issue NAME",
		Short: "Get a short-lived client certificate through the CSR API, recorded in the ledger",
		Long: `Makes a client certificate for the user NAME (and the --group groups) through the
cluster's CertificateSigningRequest API, and writes a kubeconfig for the current cluster
that uses it (--output-file, created with mode 0600; an existing file is not replaced).

The key is generated here (ECDSA P-256) and never leaves this process except into the
output file. The CSR asks for --ttl (spec.expirationSeconds; at least 10m, the CSR API's
minimum, and at most the policy's maxSigningDuration). With --approve the CSR is approved
as the caller when RBAC permits (update on certificatesigningrequests/approval and approve
on the signer); otherwise, or when not permitted, kubepki waits up to --wait for an
approver, saying what it waits for. The certificate is recorded in the issued-credential
ledger, so that kubepki revoke --for-user NAME ends it.

Refused: system:masters (no authorizer can revoke it), any other system: group or name,
and the groups that hold the whole cluster (kubeadm:cluster-admins).`,
		Example: `  kubepki issue alice --group dev --ttl 8h --approve --output-file alice.kubeconfig
  kubepki issue bob --group ops --ttl 1h --output-file bob.kubeconfig   # an approver approves`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if o.format != "kubeconfig" {
				return usagef("-o must be kubeconfig, not %q", o.format)
			}
			if o.outputFile == "" {
				return usagef("--output-file is required: the kubeconfig holds the private key, which is never printed")
			}
			if o.wait <= 0 {
				return usagef("--wait must be positive")
			}
			if err := o.ledger.validate(); err != nil {
				return err
			}
			pol := policy.Default()
			if o.policy != "" {
				var err error
				if pol, err = policy.Load(o.policy); err != nil {
					return fmt.Errorf("--policy: %w", err)
				}
			}
			req := ledger.IssueRequest{User: args[0], Groups: o.groups, TTL: o.ttl, Signer: o.signer, CSRName: o.csrName, Approve: o.approve, Wait: o.wait,
				MaxTTL: pol.MaxSigningDuration, Now: e.now,
				Progress: func(s string) { fmt.Fprintf(e.stderr, "%s\n", text.Escape(s)) }}
			if err := req.Check(); err != nil {
				return usagef("not issued: %v", err)
			}
			// The output file is made (never replaced) before anything is
			// asked of the cluster, so that a file that exists or a
			// directory that cannot be written stops issue before a
			// certificate exists; it is removed unless it ends up whole.
			f, err := os.OpenFile(o.outputFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("not issued: %s exists; kubepki issue does not replace a file that may hold another key", o.outputFile)
			}
			if err != nil {
				return fmt.Errorf("not issued: creating the output file: %w", err)
			}
			written := false
			defer func() {
				if !written {
					f.Close()
					os.Remove(o.outputFile)
				}
			}()
			cfg, _, err := o.kube.config()
			if err != nil {
				return fmt.Errorf("loading the cluster configuration: %w", err)
			}
			st, err := o.ledger.open()
			if err != nil {
				return err
			}
			if cfg.Insecure {
				return fmt.Errorf("not issued: the current context skips TLS verification (insecure-skip-tls-verify); kubepki issue writes kubeconfigs that verify the cluster")
			}
			ks, inCluster := st.(*kubestore.Store)
			if inCluster {
				// The entry is written by kubepki serve ledger, which alone
				// may create IssuedCredentials; without the resource nobody
				// will, so nothing is issued.
				if err := ks.Served(e.ctx); err != nil {
					return fmt.Errorf("not issued: %w", err)
				}
			}
			is, err := ledger.Issue(e.ctx, cfg, req)
			if err != nil {
				return err
			}
			data, err := ledger.Kubeconfig(cfg, o.clusterName(), is)
			if err != nil {
				return err
			}
			if _, err := f.Write(data); err != nil {
				return fmt.Errorf("writing the kubeconfig: %w", err)
			}
			if err := f.Sync(); err != nil {
				return fmt.Errorf("writing the kubeconfig: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("writing the kubeconfig: %w", err)
			}
			written = true
			en, skip := ledger.FromCSR(is.CSR, "", e.now())
			if skip != nil {
				return fmt.Errorf("recording the certificate: %s", skip.Detail)
			}
			fmt.Fprintf(e.stdout, "issued a client certificate for %q", en.Subject)
			if len(en.Groups) > 0 {
				fmt.Fprintf(e.stdout, " in %s", text.Escape(fmt.Sprint(en.Groups)))
			}
			fmt.Fprintf(e.stdout, " through CSR %s (signer %s), valid until %s\n", en.CSR.Name, en.Signer, en.NotAfter.Format(time.RFC3339))
			fmt.Fprintf(e.stdout, "credential ID %s\n", en.ID)
			fmt.Fprintf(e.stdout, "wrote %s (mode 0600; it holds the private key)\n", o.outputFile)
			if inCluster {
				// kubepki serve ledger records it from its CSR; wait a
				// little to say so.
				held := false
				for deadline := time.Now().Add(ledgerWait); ; {
					if held, err = ks.Has(e.ctx, en.ID); held || err != nil || !time.Now().Before(deadline) {
						break
					}
					select {
					case <-e.ctx.Done():
						return e.ctx.Err()
					case <-time.After(200 * time.Millisecond):
					}
				}
				if !held {
					if err == nil {
						err = fmt.Errorf("not yet after %s", ledgerWait)
					}
					fmt.Fprintf(e.stderr, "warning: the ledger (%s) does not hold the certificate: %v; kubepki serve ledger records it from CSR %s, which the cluster keeps for about an hour: is it running?\n", st.Where(), err, en.CSR.Name)
					return nil
				}
			} else if _, err := st.Record(en); err != nil {
				return fmt.Errorf("the certificate is issued and %s written, but recording it in the ledger (%s) failed: %w (a running kubepki serve ledger records it from its CSR)", o.outputFile, st.Where(), err)
			}
			fmt.Fprintf(e.stdout, "recorded in the ledger (%s); end it early with kubepki revoke --for-user %s\n", st.Where(), text.Escape(en.Subject))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.groups, "group", nil, "group (certificate organization); repeat for several")
	f.DurationVar(&o.ttl, "ttl", 8*time.Hour, "lifetime of the certificate (at least 10m; at most the policy's maxSigningDuration)")
	f.StringVar(&o.signer, "signer", ledger.SignerAPIServerClient, "signer to ask")
	f.BoolVar(&o.approve, "approve", false, "approve the CSR as the caller, when RBAC permits")
	f.DurationVar(&o.wait, "wait", 5*time.Minute, "how long to wait for approval and signing")
	f.StringVarP(&o.format, "output", "o", "kubeconfig", "what to write: kubeconfig")
	f.StringVar(&o.outputFile, "output-file", "", "file to write (required; created with mode 0600)")
	f.StringVar(&o.csrName, "csr-name", "", "name of the CSR (default kubepki-NAME-TIME)")
	f.StringVar(&o.policy, "policy", "", "policy file (its maxSigningDuration bounds --ttl; default 30 days)")
	o.kube.register(cmd)
	o.ledger.register(cmd, &o.kube)
	return cmd
}

// clusterName is the name of the cluster of the current context, for the
// kubeconfig written.
func (o *issueOptions) clusterName() string {
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(o.kube.rules(), &o.kube.overrides).RawConfig()
	if err != nil {
		return ""
	}
	name := raw.CurrentContext
	if o.kube.overrides.CurrentContext != "" {
		name = o.kube.overrides.CurrentContext
	}
	if c, ok := raw.Contexts[name]; ok {
		return c.Cluster
	}
	return ""
}
