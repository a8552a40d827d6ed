// Package cluster reads a live cluster through its API into evidence: RBAC,
// service accounts, pods, the metadata of service-account token Secrets,
// bootstrap tokens, CertificateSigningRequests and the control-plane pods in
// kube-system. It only ever reads (get, list), lists in pages, and reduces
// each page to what the checks need before asking for the next, so memory
// stays proportional to the evidence rather than to the objects.
//
// It is the only audit source that talks to an API server (the in-cluster
// revocation store and the test bed are the others allowed a client; see
// internal/arch). A resource the
// identity may not read is recorded in Cluster.Unread with the reason; the
// checks that need it then report notEvaluated.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/parallel"
	"github.com/kubepki/kubepki/internal/parse"
)

// Options say how to read a cluster.
type Options struct {
	// Config is the client configuration (from kubeconfig flags).
	Config *rest.Config
	// Context names the kubeconfig context, for the report.
	Context string
	// PageSize is the LIST page size; 0 means 500, kubectl's default.
	PageSize int64
	// Concurrency bounds the LISTs in flight; 0 means 4.
	Concurrency int
	// SecretKubeconfigs reads every Secret's values for the kubeconfigs
	// they hold (evidence.Cluster.Kubeconfigs). Off by default: it needs
	// the values of every Secret to cross the wire, where the rest of the
	// audit reads Secret metadata only.
	SecretKubeconfigs bool
	// Progress, when set, is told how many objects of each resource have
	// been read so far, and when a resource is done. It is called from
	// several goroutines.
	Progress func(r evidence.Resource, objects int, done bool)
}

// Read lists the cluster's objects into evidence. It returns an error only
// when the API server cannot be reached or refuses the identity altogether;
// a resource that cannot be read is recorded in Unread.
func Read(ctx context.Context, opts Options) (*evidence.Cluster, error) {
	cfg := rest.CopyConfig(opts.Config)
	// Protobuf is several times cheaper to decode than JSON for the
	// built-in types; the metadata client below keeps using JSON.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	cs, err := newClients(cfg)
	if err != nil {
		return nil, fmt.Errorf("making a client for %s: %w", opts.Config.Host, err)
	}
	md, err := metadata.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("making a metadata client for %s: %w", opts.Config.Host, err)
	}
	r := &reader{
		cs: cs, md: md, opts: opts,
		ev: &evidence.Cluster{
			Context:      opts.Context,
			Server:       opts.Config.Host,
			ControlPlane: map[string]*evidence.Component{},
			Unread:       map[evidence.Resource]string{},
		},
	}
	if r.opts.PageSize <= 0 {
		r.opts.PageSize = 500
	}
	if r.opts.Concurrency <= 0 {
		r.opts.Concurrency = 4
	}

	// One cheap request first, so an unreachable server or a rejected
	// identity is one clear error rather than one per resource.
	v, err := cs.version(ctx)
	if err != nil {
		return nil, fmt.Errorf("reaching the API server %s: %w", opts.Config.Host, err)
	}
	r.ev.Version = v.GitVersion
	if who, err := cs.whoAmI(ctx); err == nil {
		r.ev.Identity = who
	}

	jobs := []func(context.Context) error{
		r.clusterRoles, r.clusterRoleBindings, r.roles, r.roleBindings,
		r.serviceAccounts, r.pods, r.tokenSecrets, r.bootstrapTokens, r.csrs,
	}
	if opts.SecretKubeconfigs {
		jobs = append(jobs, r.secretKubeconfigs)
	} else {
		r.ev.Unread[evidence.ResSecretKubeconfigs] = evidence.SecretValuesNotAsked
	}
	errs := make([]error, len(jobs))
	parallel.For(len(jobs), r.opts.Concurrency, func(i int) {
		if errs[i] = ctx.Err(); errs[i] == nil {
			errs[i] = jobs[i](ctx)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r.ev, nil
}

type reader struct {
	cs   *clients
	md   metadata.Interface
	opts Options

	mu sync.Mutex // guards ev's slices and maps while lists run
	ev *evidence.Cluster
}

// page is one LIST response: its continue token and item count.
type page struct {
	cont  string
	items int
}

// listAll pages through a resource. list fetches one page with the given
// options and hands its items on; it returns the page's continue token and
// item count. A forbidden or unserved resource is recorded in Unread and is
// not an error; an unreachable server is.
func (r *reader) listAll(ctx context.Context, res evidence.Resource, opts metav1.ListOptions, list func(metav1.ListOptions) (page, error)) error {
	opts.Limit = r.opts.PageSize
	total := 0
	for {
		p, err := list(opts)
		if err != nil {
			if apierrors.IsResourceExpired(err) && opts.Continue != "" {
				// The continue token outlived etcd's compaction window:
				// start over rather than report a partial list.
				opts.Continue, total = "", 0
				if err := r.restart(res); err != nil {
					return err
				}
				continue
			}
			return r.unread(res, err)
		}
		total += p.items
		if r.opts.Progress != nil {
			r.opts.Progress(res, total, p.cont == "")
		}
		if p.cont == "" {
			return nil
		}
		opts.Continue = p.cont
	}
}

// restart forgets what was gathered of a resource before relisting it.
func (r *reader) restart(res evidence.Resource) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch res {
	case evidence.ResClusterRoles:
		r.ev.ClusterRoles = nil
	case evidence.ResClusterRoleBindings:
		r.ev.ClusterRoleBindings = nil
	case evidence.ResRoles:
		r.ev.Roles = nil
	case evidence.ResRoleBindings:
		r.ev.RoleBindings = nil
	case evidence.ResServiceAccounts:
		r.ev.ServiceAccounts = nil
	case evidence.ResPods:
		r.ev.Pods = nil
		clear(r.ev.ControlPlane)
	case evidence.ResTokenSecrets:
		r.ev.TokenSecrets = nil
	case evidence.ResBootstrapTokens:
		r.ev.BootstrapTokens = nil
	case evidence.ResCSRs:
		r.ev.CSRs = nil
	case evidence.ResSecretKubeconfigs:
		r.ev.Kubeconfigs = nil
	default:
		return fmt.Errorf("restarting the list of %s: unknown resource", res)
	}
	return nil
}

// unread records why a resource could not be listed, or returns the error
// when it is not about this resource (the server went away).
func (r *reader) unread(res evidence.Resource, err error) error {
	var reason string
	switch {
	case apierrors.IsForbidden(err):
		who := r.ev.Identity
		if who == "" {
			who = "this identity"
		}
		reason = fmt.Sprintf("forbidden: %s may not %s", who, res.Verb())
	case apierrors.IsNotFound(err), apierrors.IsMethodNotSupported(err):
		reason = "not served by this API server"
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("listing %s: the API server did not accept the credentials: %w", res, err)
	default:
		var ue *url.Error
		var ne net.Error
		if errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("listing %s: %w", res, err)
		}
		reason = err.Error()
	}
	r.mu.Lock()
	r.ev.Unread[res] = reason
	r.mu.Unlock()
	return nil
}

func (r *reader) problem(object, msg string) {
	r.mu.Lock()
	r.ev.Problems = append(r.ev.Problems, evidence.Problem{Path: object, Message: msg})
	r.mu.Unlock()
}

func (r *reader) clusterRoles(ctx context.Context) error {
	var l rbacv1.ClusterRoleList
	return keepRBAC(ctx, r, evidence.ResClusterRoles, "clusterroles", &l, &l.ListMeta, &l.Items, &r.ev.ClusterRoles,
		func(o *rbacv1.ClusterRole) *metav1.ObjectMeta { return &o.ObjectMeta })
}

func (r *reader) clusterRoleBindings(ctx context.Context) error {
	var l rbacv1.ClusterRoleBindingList
	return keepRBAC(ctx, r, evidence.ResClusterRoleBindings, "clusterrolebindings", &l, &l.ListMeta, &l.Items, &r.ev.ClusterRoleBindings,
		func(o *rbacv1.ClusterRoleBinding) *metav1.ObjectMeta { return &o.ObjectMeta })
}

func (r *reader) roles(ctx context.Context) error {
	var l rbacv1.RoleList
	return keepRBAC(ctx, r, evidence.ResRoles, "roles", &l, &l.ListMeta, &l.Items, &r.ev.Roles,
		func(o *rbacv1.Role) *metav1.ObjectMeta { return &o.ObjectMeta })
}

func (r *reader) roleBindings(ctx context.Context) error {
	var l rbacv1.RoleBindingList
	return keepRBAC(ctx, r, evidence.ResRoleBindings, "rolebindings", &l, &l.ListMeta, &l.Items, &r.ev.RoleBindings,
		func(o *rbacv1.RoleBinding) *metav1.ObjectMeta { return &o.ObjectMeta })
}

// keepRBAC lists an RBAC resource in every namespace into list (whose
// ListMeta and Items are lm and items) page by page, and keeps the objects
// in dst with their metadata stripped: the index needs them whole.
func keepRBAC[T any](ctx context.Context, r *reader, res evidence.Resource, resource string, list runtime.Object, lm *metav1.ListMeta, items, dst *[]T, meta func(*T) *metav1.ObjectMeta) error {
	return r.listAll(ctx, res, metav1.ListOptions{}, func(o metav1.ListOptions) (page, error) {
		*items, *lm = nil, metav1.ListMeta{}
		if err := r.cs.list(ctx, rbacv1.SchemeGroupVersion, resource, "", o, list); err != nil {
			return page{}, err
		}
		for i := range *items {
			strip(meta(&(*items)[i]))
		}
		r.mu.Lock()
		*dst = append(*dst, *items...)
		r.mu.Unlock()
		return page{lm.Continue, len(*items)}, nil
	})
}

// strip drops the metadata the checks never read (managed fields are most
// of an RBAC object's size).
func strip(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	m.Annotations = nil
	m.OwnerReferences = nil
}

func (r *reader) serviceAccounts(ctx context.Context) error {
	return r.listAll(ctx, evidence.ResServiceAccounts, metav1.ListOptions{}, func(o metav1.ListOptions) (page, error) {
		l := &corev1.ServiceAccountList{}
		err := r.cs.list(ctx, corev1.SchemeGroupVersion, "serviceaccounts", "", o, l)
		if err != nil {
			return page{}, err
		}
		out := make([]evidence.ServiceAccount, 0, len(l.Items))
		for _, sa := range l.Items {
			e := evidence.ServiceAccount{Namespace: sa.Namespace, Name: sa.Name, Automount: sa.AutomountServiceAccountToken}
			for _, s := range sa.Secrets {
				e.Secrets = append(e.Secrets, s.Name)
			}
			out = append(out, e)
		}
		r.mu.Lock()
		r.ev.ServiceAccounts = append(r.ev.ServiceAccounts, out...)
		r.mu.Unlock()
		return page{l.Continue, len(l.Items)}, nil
	})
}

func (r *reader) pods(ctx context.Context) error {
	return r.listAll(ctx, evidence.ResPods, metav1.ListOptions{}, func(o metav1.ListOptions) (page, error) {
		l := &corev1.PodList{}
		err := r.cs.list(ctx, corev1.SchemeGroupVersion, "pods", "", o, l)
		if err != nil {
			return page{}, err
		}
		out := make([]evidence.Pod, 0, len(l.Items))
		var cp []*evidence.Component
		for i := range l.Items {
			p := &l.Items[i]
			out = append(out, reducePod(p))
			if c := controlPlaneComponent(p); c != nil {
				cp = append(cp, c)
			}
		}
		r.mu.Lock()
		r.ev.Pods = append(r.ev.Pods, out...)
		for _, c := range cp {
			// Several control-plane nodes each have their mirror pod;
			// the first one stands for all, by name order of the list.
			if _, dup := r.ev.ControlPlane[c.Name]; !dup {
				r.ev.ControlPlane[c.Name] = c
			}
		}
		r.mu.Unlock()
		return page{l.Continue, len(l.Items)}, nil
	})
}

func reducePod(p *corev1.Pod) evidence.Pod {
	e := evidence.Pod{Namespace: p.Namespace, Name: p.Name, ServiceAccount: p.Spec.ServiceAccountName, Automount: p.Spec.AutomountServiceAccountToken}
	if e.ServiceAccount == "" {
		e.ServiceAccount = "default"
	}
	for _, v := range p.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				e.TokenMounted = true
			}
		}
	}
	_, e.Mirror = p.Annotations[corev1.MirrorPodAnnotationKey]
	if ref := metav1.GetControllerOf(p); ref != nil {
		e.Owner = ref.Kind + "/" + ref.Name
	}
	return e
}

// controlPlaneComponent recognises a kubeadm mirror pod of a control-plane
// component in kube-system and returns its flags, or nil.
func controlPlaneComponent(p *corev1.Pod) *evidence.Component {
	if p.Namespace != metav1.NamespaceSystem {
		return nil
	}
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; !mirror && p.Labels["tier"] != "control-plane" {
		return nil
	}
	for _, c := range p.Spec.Containers {
		cmd := append(append([]string{}, c.Command...), c.Args...)
		name := parse.ComponentOf(cmd)
		if name == "" || name == "kubelet" {
			continue
		}
		return &evidence.Component{Name: name, Source: "Pod/" + p.Namespace + "/" + p.Name, Args: parse.Flags(cmd)}
	}
	return nil
}

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// tokenSecrets reads the metadata of legacy service-account token Secrets:
// the metadata API never carries the data, so the token is never fetched.
func (r *reader) tokenSecrets(ctx context.Context) error {
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken)}
	return r.listAll(ctx, evidence.ResTokenSecrets, opts, func(o metav1.ListOptions) (page, error) {
		l, err := r.md.Resource(secretsGVR).Namespace(metav1.NamespaceAll).List(ctx, o)
		if err != nil {
			return page{}, err
		}
		out := make([]evidence.TokenSecret, 0, len(l.Items))
		for _, s := range l.Items {
			e := evidence.TokenSecret{
				Namespace:      s.Namespace,
				Name:           s.Name,
				ServiceAccount: s.Annotations[corev1.ServiceAccountNameKey],
				Created:        s.CreationTimestamp.Time,
			}
			e.LastUsed = labelDate(s.Labels["kubernetes.io/legacy-token-last-used"])
			e.InvalidSince = labelDate(s.Labels["kubernetes.io/legacy-token-invalid-since"])
			out = append(out, e)
		}
		r.mu.Lock()
		r.ev.TokenSecrets = append(r.ev.TokenSecrets, out...)
		r.mu.Unlock()
		return page{l.Continue, len(l.Items)}, nil
	})
}

// labelDate reads the YYYY-MM-DD dates the legacy-token labels carry.
func labelDate(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
