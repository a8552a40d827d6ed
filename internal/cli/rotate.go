package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/revocation"
	"github.com/kubepki/kubepki/internal/rotation"
	"github.com/kubepki/kubepki/internal/sources/cluster"
	"github.com/kubepki/kubepki/internal/sources/node"
)

func newRotateCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate a CA or the service-account key: plan, apply phase by phase, status, rollback",
		Long: `kubepki rotate shows everything a CA touches and rotates it in phases that
never break what runs in between: trust the new CA beside the old one, issue
every leaf again from the new CA, sign with the new CA, stop trusting the old
one, verify. Only a rotation ends system:masters certificates and a leaked CA
key. See docs/rotation.md.`,
	}
	cmd.AddCommand(newRotatePlanCommand(e))
	return cmd
}

// rotateTarget are the flags every rotate subcommand shares: the CA, the
// node roots and the cluster.
type rotateTarget struct {
	ca    string
	roots []string
	kube  kubeFlags
}

func (t *rotateTarget) register(cmd *cobra.Command, manyRoots bool) {
	cmd.Flags().StringVar(&t.ca, "ca", "", "what to rotate: cluster, etcd, front-proxy or service-account (required)")
	if manyRoots {
		cmd.Flags().StringArrayVar(&t.roots, "root", nil, "a node's root directory (default /); repeat for several nodes")
	} else {
		cmd.Flags().StringArrayVar(&t.roots, "root", nil, "the node's root directory (default /)")
	}
	t.kube.register(cmd)
}

func (t *rotateTarget) parseCA() (rotation.CA, error) {
	if t.ca == "" {
		return "", usagef("--ca is required: cluster, etcd, front-proxy or service-account")
	}
	ca, err := rotation.ParseCA(t.ca)
	if err != nil {
		return "", usagef("--ca: %v", err)
	}
	return ca, nil
}

func (t *rotateTarget) rootList() []string {
	if len(t.roots) == 0 {
		return []string{"/"}
	}
	return t.roots
}

// clusterConfig is the cluster to read, when the kubectl flags name one
// explicitly; why says why none is read.
func (t *rotateTarget) clusterConfig(cmd *cobra.Command) (cfg *rest.Config, why string, err error) {
	if !cmd.Flags().Changed(clientcmd.RecommendedConfigPathFlag) && !cmd.Flags().Changed("context") && !cmd.Flags().Changed("server") {
		return nil, "the cluster's objects were not read: pass --kubeconfig or --context to list kubeconfigs in Secrets, kube-root-ca.crt and other CA bundles, webhook and APIService caBundles, ClusterTrustBundles and CSR-issued certificates", nil
	}
	cfg, _, err = t.kube.config()
	if err != nil {
		return nil, "", err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 60 * time.Second
	return cfg, "", nil
}

type rotatePlanOptions struct {
	target rotateTarget
	format string
	now    string
	file   string
}

func newRotatePlanCommand(e *env) *cobra.Command {
	o := &rotatePlanOptions{}
	cmd := &cobra.Command{
		Use:   "plan --ca cluster|etcd|front-proxy|service-account [--root DIR]... [--kubeconfig F --context C]",
		Short: "List everything that is, is signed by or trusts a CA, and the phases of its rotation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ca, err := o.target.parseCA()
			if err != nil {
				return err
			}
			if o.format != "text" && o.format != "json" {
				return usagef("unknown output format %q (want text, json)", o.format)
			}
			now := e.now()
			if o.now != "" {
				if now, err = time.Parse(time.RFC3339, o.now); err != nil {
					return usagef("--now: %v", err)
				}
			}
			cfg, why, err := o.target.clusterConfig(cmd)
			if err != nil {
				return err
			}
			p, err := buildPlan(e.ctx, ca, o.target.rootList(), cfg, why, now)
			if err != nil {
				return err
			}
			write := func(w io.Writer) error {
				if o.format == "json" {
					return rotation.WriteJSON(w, p)
				}
				return rotation.WriteText(w, p)
			}
			if o.file != "" {
				return revocation.WriteAtomic(o.file, 0o644, write)
			}
			return write(e.stdout)
		},
	}
	o.target.register(cmd, true)
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text, json")
	cmd.Flags().StringVar(&o.now, "now", "", "the plan's instant (RFC 3339) instead of the current time, for reproducible plans")
	cmd.Flags().StringVar(&o.file, "output-file", "", "write the plan to this file (replaced atomically once complete) instead of standard output")
	return cmd
}

// buildPlan reads the nodes and, when cfg is set, the cluster, and plans.
func buildPlan(ctx context.Context, ca rotation.CA, roots []string, cfg *rest.Config, why string, now time.Time) (*rotation.Plan, error) {
	in := rotation.Input{CA: ca, Now: now, ClusterNote: why}
	for _, r := range roots {
		if len(node.Present(r)) == 0 {
			return nil, fmt.Errorf("--root %s: not a Kubernetes node (none of %v found)", r, node.Markers())
		}
		in.Nodes = append(in.Nodes, node.Read(ctx, node.Options{Root: r}))
	}
	if cfg != nil {
		t, err := cluster.ReadTrust(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("reading the cluster's objects: %w", err)
		}
		in.Cluster = t
	}
	return rotation.Build(in), nil
}
