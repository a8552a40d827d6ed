package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
)

type auditOptions struct {
	root     string
	kube     kubeFlags
	progress string
	out      outputOptions
}

func newAuditCommand(e *env) *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit a node's files or a live cluster against the PCI authentication and PKI guidance",
		Long: `Without a subcommand, audits all that applies here, into one report with a target per
part:

  node      this machine's files, as kubepki audit node does, when --root (default /)
            holds a Kubernetes node's files (static pod manifests, kubelet configuration,
            PKI, or a k3s or RKE2 directory)
  cluster   the current kubeconfig context (or --context), as kubepki audit cluster does,
            when it can be reached
  probe     unauthenticated probes of that context's API server host, as kubepki audit
            probe does with no HOST

A part that does not apply or cannot be reached stays in the report with a notEvaluated
finding (not-audited) saying why and what to run instead. The subcommands audit one
part each, with all their options.`,
		Example: `  kubepki audit
  kubepki audit --context prod -o html --output-file audit.html
  kubepki audit node --root /mnt/node1`,
		RunE: func(*cobra.Command, []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			if err := validateProgress(o.progress); err != nil {
				return err
			}
			if err := checkRoot(o.root); err != nil {
				return err
			}
			now := o.out.clock(e)
			opts := audit.HereOptions{Root: o.root, Now: now, Policy: o.out.policy}
			cfg, name, err := o.kube.config()
			var ue *usageError
			switch {
			case err == nil:
				opts.Cluster = audit.ClusterOptions{Config: cfg, Context: name, Now: now, Policy: opts.Policy}
				opts.ClusterNamed = o.kube.kubeconfig != "" || o.kube.overrides.CurrentContext != ""
			case errors.As(err, &ue) || o.kube.kubeconfig != "" || o.kube.overrides.CurrentContext != "":
				// A kubeconfig or context named on purpose must work.
				return fmt.Errorf("loading the cluster configuration: %w", err)
			default:
				opts.NoCluster = err.Error()
			}
			p := newProgress(e.stderr, o.progress)
			opts.Cluster.Progress = p.update
			r, err := audit.Here(e.ctx, opts)
			p.finish()
			if r == nil {
				return err
			}
			// A cluster named on purpose that could not be read fails the
			// run, after the report of what could be audited.
			if eerr := o.out.emit(e, r); eerr != nil {
				return eerr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.root, "root", "/", "directory that stands for the node's / (a mounted or copied node)")
	o.kube.register(cmd)
	cmd.Flags().StringVar(&o.progress, "progress", "auto", "progress of the cluster's reading on stderr: auto (on a terminal), always or never")
	o.out.register(cmd, reportFormats)
	cmd.AddCommand(newAuditNodeCommand(e), newAuditClusterCommand(e), newAuditProbeCommand(e))
	return cmd
}

type auditNodeOptions struct {
	root string
	out  outputOptions
}

func newAuditNodeCommand(e *env) *cobra.Command {
	o := &auditNodeOptions{}
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Audit a node from its files: manifests, kubelet, kubeconfigs, PKI, audit rules, trust store",
		Long: `Reads a node's files under --root (default /) and checks them: static pod manifests,
kubelet config and flags, kubeconfigs, the PKI directories, the kubelet's own PKI,
static token files, Linux audit rules and the OS trust store, and, on a live node
(--root /), the command lines of running control-plane processes. Nothing is written.`,
		Example: `  kubepki audit node
  kubepki audit node --root /mnt/node1 -o json > node1.json
  kubepki audit node --fail-on high -o sarif > kubepki.sarif`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			if err := checkRoot(o.root); err != nil {
				return err
			}
			r := audit.Node(e.ctx, audit.NodeOptions{Root: o.root, Now: o.out.clock(e), Policy: o.out.policy})
			return o.out.emit(e, r)
		},
	}
	cmd.Flags().StringVar(&o.root, "root", "/", "directory that stands for the node's / (a mounted or copied node)")
	o.out.register(cmd, reportFormats)
	return cmd
}

// checkRoot makes sure --root is a directory before auditing it, so a typo
// is an error rather than a report of nothing.
func checkRoot(root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--root %s is not a directory", root)
	}
	return nil
}
