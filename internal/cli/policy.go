package cli

import (
	"github.com/spf13/cobra"

	"github.com/kubepki/kubepki/internal/policy"
)

func newPolicyCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print the default policy, or check a policy file",
		Long: `A policy is what every verdict of kubepki follows: how long before expiry a leaf or a CA
certificate is expiring, how long certificates may live, how long the controller-manager
may sign for, how strong keys must be and which signature algorithms are allowed. Every
command that judges takes --policy FILE (audit, audit node|cluster|probe, certs, report,
demo, audit-log, serve exporter); without it, the default policy applies. A policy file
is YAML with apiVersion kubepki.io/v1 and kind Policy; a field it leaves out keeps its
default.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print kubepki's default policy as a policy file, to save and edit",
		Example: `  kubepki policy default > policy.yaml
  kubepki audit node --policy policy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := e.stdout.Write(policy.Default().YAML())
			return err
		},
	}, &cobra.Command{
		Use:     "check FILE",
		Short:   "Check a policy file, and print the policy it makes with the defaults filled in",
		Example: `  kubepki policy check policy.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			_, err = e.stdout.Write(p.YAML())
			return err
		},
	})
	return cmd
}
