package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/report"
)

type auditLogOptions struct {
	inventory string
	store     storeFlags
	kube      kubeFlags
	grace     time.Duration
	out       outputOptions
}

func newAuditLogCommand(e *env) *cobra.Command {
	o := &auditLogOptions{}
	cmd := &cobra.Command{
		Use:   "audit-log FILE...",
		Short: "Report every credential seen in kube-apiserver audit logs, and uses of revoked, system:masters or unknown ones",
		Long: `Reads kube-apiserver audit logs (JSON lines; rotated and gzipped files too) and lists
every credential seen: its credential ID, user, groups, first and last use, source
addresses and request count. It flags requests made with a revoked credential after its
revocation (--store), with a system:masters credential, with a client certificate not in a
certificate inventory (--inventory, a JSON report of kubepki audit node or cluster), and
requests that carry no credential ID, whose credentials cannot be revoked. This answers
"who still uses this kubeconfig?" before revoking it, and shows it unused after.`,
		Example: `  kubepki audit-log /var/log/kubernetes/audit/audit.log*
  kubepki audit-log audit.log.gz --store /var/lib/kubepki/revoked.json --inventory cluster.json -o json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			opts := audit.AuditLogOptions{Files: files, Grace: o.grace, Now: o.out.clock(e), Policy: o.out.policy}
			if err := o.store.validate(); err != nil {
				return err
			}
			_, statErr := os.Stat(o.store.path)
			if statErr == nil || cmd.Flags().Changed("store") || o.store.backend == "kubernetes" {
				l, err := o.store.load()
				if err != nil {
					return err
				}
				opts.Revoked = map[string]time.Time{}
				for _, en := range l.Entries {
					if en.Active() {
						opts.Revoked[en.ID] = en.Revoked.At
					}
				}
			}
			if o.inventory != "" {
				f, err := os.Open(o.inventory)
				if err != nil {
					return err
				}
				rep, err := report.Read(f)
				f.Close()
				if err != nil {
					return err
				}
				opts.Known, opts.KnownSource = map[string]bool{}, o.inventory
				for _, c := range rep.Certificates {
					if c.CredentialID != "" {
						opts.Known[c.CredentialID] = true
					}
				}
			}
			return o.out.emit(e, audit.AuditLog(opts))
		},
	}
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	cmd.Flags().StringVar(&o.inventory, "inventory", "", "JSON report whose certificates are the known ones")
	cmd.Flags().DurationVar(&o.grace, "grace", time.Minute, "how long after a revocation a request may still succeed (the apiserver's unauthorizedTTL plus the webhook's reload)")
	o.out.register(cmd, reportFormats)
	return cmd
}
