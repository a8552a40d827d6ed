package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/policy"
)

// ledgerFlags choose where the issued-credential ledger lives: the
// cluster itself (IssuedCredential objects, deploy/ledger-crd.yaml; the
// default) or a local file, for a kubepki that runs outside the cluster.
type ledgerFlags struct {
	backend string
	path    string
	kube    *kubeFlags
	// optional allows auto (the cluster's ledger when it has one) and
	// none, for commands that read the ledger only to add to what they
	// report.
	optional bool
}

func (l *ledgerFlags) register(cmd *cobra.Command, kube *kubeFlags) {
	l.kube = kube
	cmd.Flags().StringVar(&l.backend, "ledger", "kubernetes", "where the issued-credential ledger lives: kubernetes (IssuedCredential objects, reached with the kubeconfig flags) or file (--ledger-file)")
	cmd.Flags().StringVar(&l.path, "ledger-file", "", "the ledger file, for --ledger file")
}

// registerOptional registers the flags of a command that reads the ledger
// when there is one.
func (l *ledgerFlags) registerOptional(cmd *cobra.Command, kube *kubeFlags) {
	l.kube, l.optional = kube, true
	cmd.Flags().StringVar(&l.backend, "ledger", "auto", "the issued-credential ledger to add certificates whose CSR is gone from: auto (the cluster's IssuedCredentials, when it serves them), kubernetes, file (--ledger-file) or none")
	cmd.Flags().StringVar(&l.path, "ledger-file", "", "the ledger file, for --ledger file")
}

// forCluster opens the ledger for an audit of the cluster cfg reaches:
// nil for none; optional when a missing ledger is no error.
func (l *ledgerFlags) forCluster(cfg *rest.Config) (st ledger.Store, optional bool, err error) {
	switch l.backend {
	case "none":
		return nil, false, nil
	case "file":
		return ledger.FileStore{Path: l.path}, false, nil
	}
	ks, err := kubestore.New(cfg)
	return ks, l.backend == "auto", err
}

func (l *ledgerFlags) validate() error {
	switch l.backend {
	case "auto", "none":
		if !l.optional {
			return usagef("--ledger must be kubernetes or file, not %q", l.backend)
		}
		if l.path != "" {
			return usagef("--ledger-file is read with --ledger file only")
		}
	case "kubernetes":
		if l.path != "" {
			return usagef("--ledger-file is read with --ledger file only")
		}
	case "file":
		if l.path == "" {
			return usagef("--ledger file needs --ledger-file")
		}
	default:
		if l.optional {
			return usagef("--ledger must be auto, kubernetes, file or none, not %q", l.backend)
		}
		return usagef("--ledger must be kubernetes or file, not %q", l.backend)
	}
	return nil
}

// open validates the flags and opens the ledger they name.
func (l *ledgerFlags) open() (ledger.Store, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	if l.backend == "file" {
		return ledger.FileStore{Path: l.path}, nil
	}
	cfg, _, err := l.kube.config()
	if err != nil {
		return nil, fmt.Errorf("loading the cluster configuration: %w", err)
	}
	return kubestore.New(cfg)
}

type serveLedgerOptions struct {
	listen           string
	kube             kubeFlags
	ledger           ledgerFlags
	policy           string
	privileged       []string
	approvers        []string
	pendingGrace     time.Duration
	pendingThreshold int
}

func newServeLedgerCommand(e *env) *cobra.Command {
	o := &serveLedgerOptions{}
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Watch CertificateSigningRequests and record every certificate the cluster issues",
		Long: `Watches the cluster's CertificateSigningRequests and records each issued certificate
(client, kubelet client and serving, any signer) in the issued-credential ledger before
garbage collection removes its CSR (about an hour after issuance): its credential ID
(X509SHA256=…), subject and groups, signer, issuer and serial, notBefore and notAfter, who
requested it (user, groups, and the credential ID the request was made with), how it was
approved, the CSR's name and UID, and the certificate itself (public; no key ever
reaches the cluster or the ledger).

The ledger is IssuedCredential objects in the cluster (deploy/ledger-crd.yaml; --ledger
kubernetes, the default), named after the credential ID and immutable, or a local file
(--ledger file --ledger-file PATH). A record is idempotent: several replicas, or one
restarted, never record a certificate twice, and a certificate issued while no ledger
ran is recorded from its CSR when one starts (if its CSR is still there).

As it watches it flags, in its log (level WARN) and in kubepki_ledger_flags_total: CSRs
asking for a privileged group (system:masters, kubeadm:cluster-admins, --privileged-group)
or a reserved system: name their signer does not issue; approvals not made as expected
(a kubelet client certificate not auto-approved by the controller-manager; with
--expected-approver, any other approval whose reason or field manager is not listed);
certificates that live longer than the policy's maxSigningDuration (--policy). CSRs
approved longer than --pending-grace ago without a certificate are counted in
kubepki_ledger_approved_unissued and logged as a pile-up from --pending-threshold on.
Denied, failed and unparsable CSRs are logged with the reason and skipped.

/metrics, /healthz and /readyz (ready once the first listing is in) are served on --listen.`,
		Example: `  kubepki serve ledger
  kubepki serve ledger --ledger file --ledger-file /var/lib/kubepki/ledger.json --kubeconfig admin.conf`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.pendingGrace <= 0 || o.pendingThreshold <= 0 {
				return usagef("--pending-grace and --pending-threshold must be positive")
			}
			st, err := o.ledger.open()
			if err != nil {
				return err
			}
			pol := policy.Default()
			if o.policy != "" {
				if pol, err = policy.Load(o.policy); err != nil {
					return fmt.Errorf("--policy: %w", err)
				}
			}
			cfg, _, err := o.kube.config()
			if err != nil {
				return fmt.Errorf("loading the cluster configuration: %w", err)
			}
			privileged := append(append([]string{}, ledger.DefaultPrivilegedGroups...), o.privileged...)
			return ledger.Serve(e.ctx, ledger.ServeOptions{
				Config: cfg, Store: st, Listen: o.listen, Log: slog.New(slog.NewTextHandler(e.stderr, nil)),
				Flags:        ledger.FlagOptions{PrivilegedGroups: privileged, MaxLifetime: pol.MaxSigningDuration, ExpectedApprovers: o.approvers},
				PendingGrace: o.pendingGrace, PendingThreshold: o.pendingThreshold,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", ":9102", "address to serve /metrics, /healthz and /readyz on")
	f.StringVar(&o.policy, "policy", "", "policy file (its maxSigningDuration is the longest lifetime not flagged; default 30 days)")
	f.StringSliceVar(&o.privileged, "privileged-group", nil, "more groups whose CSRs are flagged (system:masters and kubeadm:cluster-admins always are)")
	f.StringSliceVar(&o.approvers, "expected-approver", nil, "approval reasons or field managers expected on CSRs of signers other than the kubelet client signer; others are flagged")
	f.DurationVar(&o.pendingGrace, "pending-grace", 5*time.Minute, "how long an approved CSR may wait for its certificate before it counts as piling up")
	f.IntVar(&o.pendingThreshold, "pending-threshold", 10, "how many approved-but-unissued CSRs are logged as a pile-up")
	o.kube.register(cmd)
	o.ledger.register(cmd, &o.kube)
	return cmd
}
