package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
)

func newAuditCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit a node's files or a live cluster against the PCI authentication and PKI guidance",
		Args:  cobra.NoArgs,
	}
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
			r := audit.Node(e.ctx, audit.NodeOptions{Root: o.root, Now: o.out.clock(e), Policy: checks.DefaultPolicy()})
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
