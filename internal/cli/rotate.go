package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/policy"
	"github.com/kubepki/kubepki/internal/render/text"
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
	cmd.AddCommand(newRotatePlanCommand(e), newRotateApplyCommand(e), newRotateStatusCommand(e), newRotateRollbackCommand(e), newRotateExportCommand(e))
	return cmd
}

// rotateTarget are the flags of rotate plan: the CA, the node roots and
// the cluster; apply, status and rollback use its CA and one root.
type rotateTarget struct {
	ca      string
	roots   []string
	rootOne string
	kube    kubeFlags
}

func (t *rotateTarget) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.ca, "ca", "", "what to rotate: cluster, etcd, front-proxy or service-account (required)")
	cmd.Flags().StringArrayVar(&t.roots, "root", nil, "a node's root directory (default /); repeat for several nodes")
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
			if o.format != "text" && o.format != "json" && o.format != "html" {
				return usagef("unknown output format %q (want text, json, html)", o.format)
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
				switch o.format {
				case "json":
					return rotation.WriteJSON(w, p)
				case "html":
					return rotation.WriteHTML(w, p)
				}
				return rotation.WriteText(w, p)
			}
			if o.file != "" {
				return revocation.WriteAtomic(o.file, 0o644, write)
			}
			return write(e.stdout)
		},
	}
	o.target.register(cmd)
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text, json, html (one self-contained page)")
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

// rotateNodeOptions are the flags of apply, status and rollback: one node.
type rotateNodeOptions struct {
	target   rotateTarget
	stateDir string
}

func (o *rotateNodeOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.target.ca, "ca", "", "what to rotate: cluster, etcd, front-proxy or service-account (required)")
	cmd.Flags().StringVar(&o.target.rootOne, "root", "/", "the node's root directory")
	cmd.Flags().StringVar(&o.stateDir, "state-dir", "", "where the new and old keys, the backups and the progress are kept (default ROOT/var/lib/kubepki/rotation/CA); copy it to the other nodes after phase 1 on the first control-plane node")
}

// cluster is the cluster whose objects apply and rollback change too, when
// --kubeconfig or --context names one.
func (o *rotateNodeOptions) cluster(cmd *cobra.Command, opts *rotation.Options) error {
	cfg, _, err := o.target.clusterConfig(cmd)
	opts.Cluster = cfg
	return err
}

func (o *rotateNodeOptions) options(e *env) (rotation.Options, error) {
	ca, err := o.target.parseCA()
	if err != nil {
		return rotation.Options{}, err
	}
	return rotation.Options{CA: ca, Root: o.target.rootOne, StateDir: o.stateDir, Now: e.now()}, nil
}

type rotateApplyOptions struct {
	rotateNodeOptions
	phase      int
	next       bool
	policyFile string
	adopt      bool
	force      bool
}

func newRotateApplyCommand(e *env) *cobra.Command {
	o := &rotateApplyOptions{}
	cmd := &cobra.Command{
		Use:   "apply --ca CA --root DIR (--phase N | --next) [--state-dir DIR]",
		Short: "Perform one phase of a CA rotation on a node's files, then say what to restart",
		Long: `Performs one phase of the rotation on the node's files: each write atomic,
keeping the file's mode and owner, after a backup of what it held into the
state directory. A phase applied twice changes nothing; a phase stopped
anywhere (kill -9, a crash) is completed by applying it again. It then
prints the components to restart before the next phase.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.next == (o.phase != 0) {
				return usagef("pass one of --phase N or --next")
			}
			opts, err := o.options(e)
			if err != nil {
				return err
			}
			opts.Phase = o.phase
			if err := o.cluster(cmd, &opts); err != nil {
				return err
			}
			opts.AdoptCopied = o.adopt
			opts.Force = o.force
			opts.Policy = policy.Default()
			if o.policyFile != "" {
				if opts.Policy, err = policy.Load(o.policyFile); err != nil {
					return fmt.Errorf("--policy: %w", err)
				}
			}
			res, err := rotation.Apply(e.ctx, opts)
			if err != nil {
				return err
			}
			w := e.stdout
			fmt.Fprintf(w, "phase %d (%s) of the rotation of %s on %s\n", res.Phase, res.Name, opts.CA.Noun(), text.Escape(opts.Root))
			switch {
			case res.Name == rotation.PhaseVerify && len(res.Problems) == 0:
				fmt.Fprintf(w, "verified: nothing on the node is, is signed by or trusts the old one of %s\n", opts.CA.Noun())
			case len(res.Changed) == 0:
				fmt.Fprintf(w, "nothing changed: the phase had been applied\n")
			}
			for _, p := range res.Changed {
				fmt.Fprintf(w, "  rewrote %s\n", text.Escape(p))
			}
			for _, m := range res.Manual {
				fmt.Fprintf(w, "  by hand: %s\n", text.Escape(m))
			}
			if len(res.Problems) > 0 {
				for _, p := range res.Problems {
					fmt.Fprintf(w, "  not done: %s\n", text.Escape(p))
				}
				return fmt.Errorf("phase %d (%s) found %d things still tied to the old CA; the rotation is not complete", res.Phase, res.Name, len(res.Problems))
			}
			switch {
			case len(res.Restart) == 0:
			case len(res.Changed) == 0:
				// Applied before (perhaps by a run stopped before it
				// printed this): the restarts may still be owed.
				fmt.Fprintf(w, "restart, in this order, unless done since the phase was applied: %s\n", strings.Join(res.Restart, ", "))
			default:
				fmt.Fprintf(w, "restart now, in this order: %s\n", strings.Join(res.Restart, ", "))
			}
			return nil
		},
	}
	o.register(cmd)
	o.target.kube.register(cmd) // --kubeconfig/--context: cluster-info too
	cmd.Flags().IntVar(&o.phase, "phase", 0, "the phase to apply (1 trust-both, 2 reissue, 3 switch-signer, 4 drop-old, 5 verify)")
	cmd.Flags().BoolVar(&o.next, "next", false, "apply the next phase (or complete the one a crash stopped)")
	cmd.Flags().BoolVar(&o.adopt, "adopt-copied-state", false, "take on a state directory copied from another node: this node's progress starts at phase 0 (its CA file must still hold the old CA alone) and the copied backups are deleted")
	cmd.Flags().BoolVar(&o.force, "force", false, "apply phase 4 of the service-account key within an hour (or --service-account-max-token-expiration) of phase 3, before kubelets have refreshed every bound token")
	cmd.Flags().StringVar(&o.policyFile, "policy", "", "YAML policy file: the lifetimes of the new CA (maxCAValidity) and of reissued certificates (maxLeafValidity), key sizes")
	return cmd
}

func newRotateStatusCommand(e *env) *cobra.Command {
	o := &rotateNodeOptions{}
	var format string
	cmd := &cobra.Command{
		Use:   "status --ca CA [--root DIR] [--state-dir DIR]",
		Short: "Say where a CA rotation stands on a node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return usagef("unknown output format %q (want text, json)", format)
			}
			opts, err := o.options(e)
			if err != nil {
				return err
			}
			s, err := rotation.ReadStatus(opts)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			w := e.stdout
			switch {
			case s.CopiedFrom != "":
				fmt.Fprintf(w, "the state of the rotation of %s was copied from %s; no phase applied on this node yet (%s)\n", s.CA.Noun(), text.Escape(s.CopiedFrom), text.Escape(s.StateDir))
			case s.Phase == 0 && s.InProgress == 0:
				fmt.Fprintf(w, "no rotation of %s started (%s)\n", s.CA.Noun(), text.Escape(s.StateDir))
			case s.Phase == 0:
				fmt.Fprintf(w, "the rotation of %s: no phase completed (%s)\n", s.CA.Noun(), text.Escape(s.StateDir))
			default:
				fmt.Fprintf(w, "the rotation of %s: phase %d (%s) completed (%s)\n", s.CA.Noun(), s.Phase, s.Name, text.Escape(s.StateDir))
			}
			if s.InProgress != 0 {
				fmt.Fprintf(w, "phase %d (%s) was started and not completed: apply it again (kubepki rotate apply --next)\n", s.InProgress, rotation.PhaseNames[s.InProgress-1])
			} else if s.Next != 0 {
				fmt.Fprintf(w, "next: phase %d (%s)\n", s.Next, rotation.PhaseNames[s.Next-1])
			} else {
				fmt.Fprintf(w, "the rotation is complete\n")
			}
			for _, h := range s.History {
				fmt.Fprintf(w, "  %s  phase %d %s, %s\n", h.At.Format(time.RFC3339), h.Phase, h.Action, phrase.Plural(len(h.Changed), "file", "files"))
			}
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json")
	return cmd
}

func newRotateRollbackCommand(e *env) *cobra.Command {
	o := &rotateNodeOptions{}
	cmd := &cobra.Command{
		Use:   "rollback --ca CA [--root DIR] [--state-dir DIR]",
		Short: "Undo the last phase of a CA rotation on a node: every file it changed gets its content back",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := o.options(e)
			if err != nil {
				return err
			}
			if err := o.cluster(cmd, &opts); err != nil {
				return err
			}
			rb, err := rotation.Rollback(e.ctx, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rolled back phase %d (%s) of the rotation of %s on %s\n", rb.Phase, rb.Name, opts.CA.Noun(), text.Escape(opts.Root))
			for _, p := range rb.Restored {
				fmt.Fprintf(e.stdout, "  restored %s\n", text.Escape(p))
			}
			if len(rb.Restart) > 0 {
				fmt.Fprintf(e.stdout, "restart now, in this order: %s\n", strings.Join(rb.Restart, ", "))
			}
			return nil
		},
	}
	o.register(cmd)
	o.target.kube.register(cmd)
	return cmd
}

func newRotateExportCommand(e *env) *cobra.Command {
	o := &rotateNodeOptions{}
	var out string
	var keys bool
	cmd := &cobra.Command{
		Use:   "export --ca CA [--root DIR] [--state-dir DIR] --out DIR [--with-keys]",
		Short: "Write what another node needs of a CA rotation's state: the CA certificates and the progress, no backups, keys only when asked",
		Long: `Writes into a new directory what another node needs to follow a rotation
begun on this one: the old and new CA certificates and the progress, without
the backups (they hold this node's kubeconfigs and keys). --with-keys adds
the old and new CA keys, which another control-plane node needs; a worker
needs none, except the new key for phase 2. Copy the directory to the other
node as its state directory and apply there with --adopt-copied-state.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out is required")
			}
			opts, err := o.options(e)
			if err != nil {
				return err
			}
			files, err := rotation.Export(opts, out, keys)
			if err != nil {
				return err
			}
			for _, f := range files {
				fmt.Fprintf(e.stdout, "wrote %s\n", text.Escape(f))
			}
			fmt.Fprintf(e.stdout, "copy %s to the other node as its state directory, then: kubepki rotate apply --ca %s --next --adopt-copied-state\n", text.Escape(out), opts.CA)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&out, "out", "", "the directory to write (new or empty)")
	cmd.Flags().BoolVar(&keys, "with-keys", false, "add the old and new CA keys (for another control-plane node)")
	return cmd
}
