package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/sample"
)

type demoOptions struct {
	dir string
	out outputOptions
}

func newDemoCommand(e *env) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Write a sample kubeadm control-plane node with realistic weaknesses, and audit it",
		Long: `Writes a sample kubeadm-layout control-plane node (certificates, keys, kubeconfigs,
static pod manifests, kubelet config, audit rules, trust store) into a directory,
with weaknesses seen on real clusters, then audits it as 'kubepki audit node --root'
would. No cluster is needed. With --dir the node is kept for you to explore
(kubepki certs --root DIR); without it a temporary directory is used and removed.`,
		Example: `  kubepki demo
  kubepki demo --dir /tmp/sample-node && kubepki certs --root /tmp/sample-node`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			dir := o.dir
			if dir == "" {
				tmp, err := os.MkdirTemp("", "kubepki-demo-")
				if err != nil {
					return fmt.Errorf("creating demo directory: %w", err)
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return usagef("--dir %s is not empty; give a new or empty directory", dir)
			}
			now := o.out.clock(e)
			if err := sample.WriteNode(dir, now); err != nil {
				return fmt.Errorf("writing the sample node: %w", err)
			}
			if o.dir != "" {
				fmt.Fprintf(e.stderr, "sample node written to %s\n", dir)
			}
			r := audit.Node(e.ctx, audit.NodeOptions{Root: dir, Now: now, Policy: o.out.policy})
			return o.out.emit(e, r)
		},
	}
	cmd.Flags().StringVar(&o.dir, "dir", "", "write the sample node here and keep it (a new or empty directory)")
	o.out.register(cmd, reportFormats)
	return cmd
}
