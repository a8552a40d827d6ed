package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/ledger"
	"github.com/kubepki/kubepki/internal/ledger/kubestore"
	"github.com/kubepki/kubepki/internal/report"
)

type auditLogOptions struct {
	inventory []string
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
certificate inventory (--inventory: JSON reports of kubepki audit node or cluster, ledger
files of kubepki serve ledger, or "ledger" for the cluster's IssuedCredentials), and
requests that carry no credential ID, whose credentials cannot be revoked. This answers
"who still uses this kubeconfig?" before revoking it, and shows it unused after.`,
		Example: `  kubepki audit-log /var/log/kubernetes/audit/audit.log*
  kubepki audit-log audit.log.gz --store /var/lib/kubepki/revoked.json --inventory cluster.json -o json
  kubepki audit-log audit.log --inventory node.json --inventory ledger`,
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
			if len(o.inventory) > 0 {
				opts.Known = map[string]bool{}
				if err := o.known(e, opts.Known); err != nil {
					return err
				}
				opts.KnownSource = strings.Join(o.inventory, ", ")
			}
			return o.out.emit(e, audit.AuditLog(opts))
		},
	}
	o.kube.register(cmd)
	o.store.register(cmd, &o.kube)
	cmd.Flags().StringSliceVar(&o.inventory, "inventory", nil, "where the known certificates are: a JSON report of kubepki audit node or cluster, a ledger file, or ledger (the cluster's IssuedCredentials; ./ledger for a file of that name); repeat for several")
	cmd.Flags().DurationVar(&o.grace, "grace", time.Minute, "how long after a revocation a request may still succeed (the apiserver's unauthorizedTTL plus the webhook's reload)")
	o.out.register(cmd, reportFormats)
	return cmd
}

// known adds the credential IDs of every certificate the --inventory
// sources hold: reports, ledger files, or the cluster's ledger.
func (o *auditLogOptions) known(e *env, ids map[string]bool) error {
	for _, src := range o.inventory {
		var entries []ledger.Entry
		switch {
		case src == "ledger":
			cfg, _, err := o.kube.config()
			if err != nil {
				return fmt.Errorf("--inventory ledger: loading the cluster configuration: %w", err)
			}
			ks, err := kubestore.New(cfg)
			if err != nil {
				return err
			}
			entries, err = ks.Load()
			var damaged *ledger.DamagedError
			if errors.As(err, &damaged) {
				// What could not be read stays unknown: its uses are
				// reported, which is the safe side.
				fmt.Fprintf(e.stderr, "warning: --inventory ledger: %v\n", damaged)
				err = nil
			}
			if err != nil {
				return fmt.Errorf("--inventory ledger: %w", err)
			}
		default:
			data, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			var head struct {
				Version string `json:"version"`
			}
			if json.Unmarshal(data, &head) == nil && head.Version == ledger.Version {
				l, err := ledger.Decode(bytes.NewReader(data))
				if err != nil {
					return fmt.Errorf("--inventory %s: %w", src, err)
				}
				entries = l.Entries
				break
			}
			rep, err := report.Read(bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("--inventory %s: %w", src, err)
			}
			for _, c := range rep.Certificates {
				if c.CredentialID != "" {
					ids[c.CredentialID] = true
				}
			}
		}
		for _, en := range entries {
			ids[en.ID] = true
		}
	}
	return nil
}
