package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/tools/clientcmd"

	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/audit"
	"github.com/kubepki/kubepki/internal/checks"
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

// config returns the client configuration and the name of the context used.
func (k *kubeFlags) config() (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &k.overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
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

type auditClusterOptions struct {
	kube        kubeFlags
	pageSize    int64
	concurrency int
	progress    string
	out         outputOptions
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
part), and the flags of control-plane pods where kube-system shows them.

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
			switch o.progress {
			case "auto", "always", "never":
			default:
				return usagef("--progress must be auto, always or never, not %q", o.progress)
			}
			if o.pageSize < 1 || o.concurrency < 1 {
				return usagef("--page-size and --concurrency must be at least 1")
			}
			cfg, context, err := o.kube.config()
			if err != nil {
				return fmt.Errorf("loading the cluster configuration: %w", err)
			}
			p := newProgress(e.stderr, o.progress)
			r, err := audit.Cluster(e.ctx, audit.ClusterOptions{
				Config: cfg, Context: context, Now: o.out.clock(e), Policy: checks.DefaultPolicy(),
				PageSize: o.pageSize, Concurrency: o.concurrency, Progress: p.update,
			})
			p.finish()
			if err != nil {
				return err
			}
			return o.out.emit(e, r)
		},
	}
	o.kube.register(cmd)
	cmd.Flags().Int64Var(&o.pageSize, "page-size", 500, "objects per LIST request")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", 4, "LIST requests in flight at once")
	cmd.Flags().StringVar(&o.progress, "progress", "auto", "progress on stderr: auto (on a terminal), always or never")
	o.out.register(cmd, reportFormats)
	return cmd
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
