package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/evidence"
)

// kubeFlags are kubectl's connection flags, from client-go's clientcmd,
// the package kubectl and k8s.io/cli-runtime build theirs on. cli-runtime's
// ConfigFlags would add only --cache-dir and --disable-compression, at the
// price of kustomize and the resource builder in every kubepki binary.
type kubeFlags struct {
	kubeconfig string
	overrides  clientcmd.ConfigOverrides
}

func (k *kubeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, clientcmd.RecommendedConfigPathFlag, "", "path to the kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	clientcmd.BindOverrideFlags(&k.overrides, cmd.Flags(), clientcmd.RecommendedConfigOverrideFlags(""))
	// The audit always reads every namespace; a namespace would be ignored.
	_ = cmd.Flags().MarkHidden("namespace")
}

// rules are where the kubeconfig is looked for: --kubeconfig, else the
// files of $KUBECONFIG, else ~/.kube/config.
func (k *kubeFlags) rules() *clientcmd.ClientConfigLoadingRules {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	return rules
}

// config returns the client configuration and the name of the context used.
func (k *kubeFlags) config() (*rest.Config, string, error) {
	rules := k.rules()
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &k.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		switch {
		case clientcmd.IsEmptyConfig(err):
			// client-go's own words suggest KUBERNETES_MASTER, which
			// nothing reads any more.
			return nil, "", noKubeconfig(rules)
		case k.kubeconfig != "" && errors.Is(err, fs.ErrNotExist):
			return nil, "", fmt.Errorf("--kubeconfig %s does not exist", k.kubeconfig)
		case k.overrides.CurrentContext != "":
			if raw, lerr := rules.Load(); lerr == nil && raw.Contexts[k.overrides.CurrentContext] == nil {
				return nil, "", usagef("--context: the kubeconfig (%s) has no context %q; pass one of: %s",
					strings.Join(rules.GetLoadingPrecedence(), ", "), k.overrides.CurrentContext, strings.Join(contextNames(raw), ", "))
			}
		}
		return nil, "", err
	}
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, "", err
	}
	name := raw.CurrentContext
	if k.overrides.CurrentContext != "" {
		name = k.overrides.CurrentContext
	}
	return cfg, name, nil
}

// noKubeconfig explains why the kubeconfig gave no cluster, in place of
// client-go's words: where kubepki looked, and what to pass.
func noKubeconfig(rules *clientcmd.ClientConfigLoadingRules) error {
	files := rules.GetLoadingPrecedence()
	if raw, err := rules.Load(); err == nil && len(raw.Contexts) > 0 && raw.CurrentContext == "" {
		return fmt.Errorf("the kubeconfig (%s) sets no current context; pass --context NAME (one of: %s), or choose one with 'kubectl config use-context NAME'",
			strings.Join(files, ", "), strings.Join(contextNames(raw), ", "))
	}
	var looked string
	switch {
	case rules.ExplicitPath != "":
		looked = kubeconfigState(rules.ExplicitPath) + " (--kubeconfig)"
	case os.Getenv(clientcmd.RecommendedConfigPathEnvVar) != "":
		states := make([]string, len(files))
		for i, p := range files {
			states[i] = kubeconfigState(p)
		}
		looked = strings.Join(states, "; ") + " ($" + clientcmd.RecommendedConfigPathEnvVar + ")"
	case os.Getenv("HOME") == "":
		looked = "neither KUBECONFIG nor HOME (for ~/.kube/config) is set"
	default:
		looked = kubeconfigState(clientcmd.RecommendedHomeFile) + " (KUBECONFIG is not set)"
	}
	return fmt.Errorf("no kubeconfig found: %s; nor is kubepki running in a pod with a service account. "+
		"Pass --kubeconfig FILE (and --context NAME to pick a context), or set KUBECONFIG", looked)
}

// kubeconfigState says why a kubeconfig file gave no context.
func kubeconfigState(path string) string {
	cfg, err := clientcmd.LoadFromFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return path + " does not exist"
	case err != nil:
		return fmt.Sprintf("%s cannot be read: %v", path, err)
	case len(cfg.Contexts) == 0:
		return path + " has no context"
	}
	return path + " gives no cluster"
}

// contextNames returns the names of a kubeconfig's contexts, sorted.
func contextNames(cfg *clientcmdapi.Config) []string {
	names := make([]string, 0, len(cfg.Contexts))
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type auditClusterOptions struct {
	kube        kubeFlags
	allContexts bool
	contexts    []string
	clusters    int
	pageSize    int64
	concurrency int
	progress    string
	readSecrets bool
	ledger      ledgerFlags
	out         outputOptions
}

// contextConfigs returns the client configuration of each context to audit
// when several are asked for: every context of the kubeconfig, or those
// named, in the order given (every one sorted by name).
func (k *kubeFlags) contextConfigs(all bool, names []string) ([]*rest.Config, []string, error) {
	rules := k.rules()
	raw, err := rules.Load()
	if err != nil {
		return nil, nil, err
	}
	if len(raw.Contexts) == 0 {
		return nil, nil, noKubeconfig(rules)
	}
	if all {
		names = contextNames(raw)
	}
	var cfgs []*rest.Config
	for _, n := range names {
		if _, ok := raw.Contexts[n]; !ok {
			return nil, nil, usagef("--contexts: the kubeconfig has no context %q", n)
		}
		over := k.overrides
		over.CurrentContext = n
		cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, n, &over, rules).ClientConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("context %s: %w", n, err)
		}
		cfgs = append(cfgs, cfg)
	}
	return cfgs, names, nil
}

func newAuditClusterCommand(e *env) *cobra.Command {
	o := &auditClusterOptions{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Audit a live cluster through its API: RBAC, service accounts, tokens, CSRs, control-plane flags",
		Long: `Reads a running cluster through its API, with kubectl's connection flags, and
checks who can mint, sign, impersonate and steal credentials (an effective-permission
index over every ClusterRole, Role and binding), what anonymous and every-authenticated
identities are granted beyond Kubernetes' defaults, legacy service-account token
Secrets (metadata only: token values are never fetched), pods and the tokens they mount,
client certificates issued through the CSR API, bootstrap tokens (never their secret
part), and the flags of control-plane pods where kube-system shows them. Certificates the
issued-credential ledger recorded (kubepki serve ledger) whose CSR is gone are added to
the certificate inventory, marked as from the ledger (--ledger).

It only reads (get, list), in pages. deploy/rbac.yaml is the read-only ClusterRole it
needs; under a narrower identity, every check whose evidence it may not read reports
notEvaluated naming the missing permission.`,
		Example: `  kubepki audit cluster
  kubepki audit cluster --context prod -o json > prod.json
  kubepki audit cluster --as system:serviceaccount:kubepki:kubepki --fail-on high`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.out.validate(reportFormats); err != nil {
				return err
			}
			if err := validateProgress(o.progress); err != nil {
				return err
			}
			if o.pageSize < 1 || o.concurrency < 1 || o.clusters < 1 {
				return usagef("--page-size, --concurrency and --clusters must be at least 1")
			}
			if err := o.ledger.validate(); err != nil {
				return err
			}
			if o.allContexts || len(o.contexts) > 0 {
				return o.auditContexts(e)
			}
			cfg, context, err := o.kube.config()
			if err != nil {
				return fmt.Errorf("loading the cluster configuration: %w", err)
			}
			lg, optional, err := o.ledger.forCluster(cfg)
			if err != nil {
				return err
			}
			p := newProgress(e.stderr, o.progress)
			r, err := audit.Cluster(e.ctx, audit.ClusterOptions{
				Config: cfg, Context: context, Now: o.out.clock(e), Policy: o.out.policy,
				PageSize: o.pageSize, Concurrency: o.concurrency, Progress: p.update,
				Ledger: lg, LedgerOptional: optional, ReadSecrets: o.readSecrets,
			})
			p.finish()
			if err != nil {
				return err
			}
			return o.out.emit(e, r)
		},
	}
	o.kube.register(cmd)
	cmd.Flags().BoolVar(&o.allContexts, "all-contexts", false, "audit every context of the kubeconfig, into one report with a target per cluster")
	cmd.Flags().StringSliceVar(&o.contexts, "contexts", nil, "audit these contexts (comma-separated), into one report with a target per cluster")
	cmd.Flags().IntVar(&o.clusters, "clusters", 4, "with --all-contexts or --contexts: clusters audited at once")
	cmd.Flags().Int64Var(&o.pageSize, "page-size", 500, "objects per LIST request")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", 4, "LIST requests in flight at once")
	cmd.Flags().StringVar(&o.progress, "progress", "auto", "progress on stderr: auto (on a terminal), always or never")
	cmd.Flags().BoolVar(&o.readSecrets, "read-secrets", false, "read Secret values for the kubeconfigs they hold and judge how their users authenticate (needs list on secrets; no value is kept or printed)")
	o.ledger.registerOptional(cmd, &o.kube)
	o.out.register(cmd, reportFormats)
	return cmd
}

// auditContexts audits several contexts concurrently into one report. A
// context that cannot be audited is reported as such, on stderr and as an
// error finding of its target, and makes the exit status 1 once the report
// of the others is written.
func (o *auditClusterOptions) auditContexts(e *env) error {
	if o.allContexts && len(o.contexts) > 0 {
		return usagef("--all-contexts and --contexts do not go together")
	}
	if o.kube.overrides.CurrentContext != "" {
		return usagef("--context names one cluster; use --contexts for several")
	}
	cfgs, names, err := o.kube.contextConfigs(o.allContexts, o.contexts)
	if err != nil {
		return fmt.Errorf("loading the cluster configuration: %w", err)
	}
	now := o.out.clock(e)
	opts := make([]audit.ClusterOptions, len(cfgs))
	for i := range cfgs {
		opts[i] = audit.ClusterOptions{Config: cfgs[i], Context: names[i], Now: now, Policy: o.out.policy, PageSize: o.pageSize, Concurrency: o.concurrency, ReadSecrets: o.readSecrets}
		if opts[i].Ledger, opts[i].LedgerOptional, err = o.ledger.forCluster(cfgs[i]); err != nil {
			return err
		}
	}
	r, failed := audit.Clusters(e.ctx, opts, o.clusters)
	for _, f := range failed {
		fmt.Fprintf(e.stderr, "kubepki: %v\n", f)
	}
	if err := o.out.emit(e, r); err != nil && len(failed) == 0 {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d contexts could not be audited", len(failed), len(names))
	}
	return nil
}

// progress shows on stderr how many objects of each resource have been
// read, on one line redrawn at most ten times a second.
type progress struct {
	w    io.Writer
	on   bool
	mu   sync.Mutex
	n    map[evidence.Resource]int
	done map[evidence.Resource]bool
	last time.Time
}

// validateProgress checks a --progress flag.
func validateProgress(mode string) error {
	switch mode {
	case "auto", "always", "never":
		return nil
	}
	return usagef("--progress must be auto, always or never, not %q", mode)
}

func newProgress(w io.Writer, mode string) *progress {
	on := mode == "always"
	if mode == "auto" {
		f, ok := w.(*os.File)
		on = ok && term.IsTerminal(int(f.Fd()))
	}
	return &progress{w: w, on: on, n: map[evidence.Resource]int{}, done: map[evidence.Resource]bool{}}
}

func (p *progress) update(r evidence.Resource, objects int, done bool) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n[r], p.done[r] = objects, done
	if time.Since(p.last) < 100*time.Millisecond && !done {
		return
	}
	p.last = time.Now()
	var parts []string
	for res, n := range p.n {
		name := string(res)
		name = name[strings.LastIndex(name, "/")+1:]
		if i := strings.Index(name, " "); i > 0 {
			name = name[:i]
		}
		mark := "…"
		if p.done[res] {
			mark = ""
		}
		parts = append(parts, fmt.Sprintf("%s %d%s", name, n, mark))
	}
	sort.Strings(parts)
	fmt.Fprintf(p.w, "\r\033[Kreading %s", strings.Join(parts, ", "))
}

func (p *progress) finish() {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.n) > 0 {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
