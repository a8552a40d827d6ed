package checks

import (
	"fmt"
	"sort"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/rbac"
	"github.com/kubepki/kubepki/internal/report"
)

func init() {
	register(
		&Check{
			ID: "serviceaccount-legacy-token-secrets", Title: "No legacy service-account token Secrets remain",
			Severity: report.SeverityMedium, Component: "serviceaccounts", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.3", "1.4"}, MITRE: []string{"T1528"}},
			Why:         "A Secret of type kubernetes.io/service-account-token holds a token that never expires and carries no credential ID, so it can be stopped only by deleting the Secret. Anyone who can read Secrets in its namespace holds it.",
			Remediation: "Delete legacy token Secrets (kubectl delete secret); workloads get short-lived projected tokens, and people use kubectl create token when they must.",
			Run:         runLegacyTokens,
		},
		&Check{
			ID: "pod-automount-token", Title: "Pods mount a service-account token only when they use the API",
			Severity: report.SeverityLow, Component: "serviceaccounts", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.5"}, CIS: []string{"5.1.6"}, MITRE: []string{"T1528"}},
			Why:         "Every container of a pod with an automounted token can read a credential for the API server; most workloads never call it. The pod's automountServiceAccountToken wins over its service account's.",
			Remediation: "Set automountServiceAccountToken: false on the service account, or on pods that do not call the API.",
			Run:         runAutomount,
		},
		&Check{
			ID: "pod-default-service-account", Title: "Pods run under their own service account, not default",
			Severity: report.SeverityLow, Component: "serviceaccounts", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.5", "1.2"}, CIS: []string{"5.1.5"}, MITRE: []string{"T1078.004"}},
			Why:         "The default service account is shared by every pod of the namespace that names no other; a permission granted to it for one workload is held by all of them.",
			Remediation: "Create a service account per workload and set spec.serviceAccountName; leave default without bindings and with automountServiceAccountToken: false.",
			Run:         runDefaultSA,
		},
		&Check{
			ID: "pod-powerful-token", Title: "No pod mounts a token with cluster-wide power",
			Severity: report.SeverityCritical, Component: "serviceaccounts", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.5", "1.2"}, MITRE: []string{"T1528", "T1611"}},
			Why:         "A container that can read a token of a service account able to act as cluster-admin, impersonate, approve CSRs, read kube-system's Secrets, escalate or mint tokens hands the whole cluster to whoever compromises that container.",
			Remediation: "Give the workload a service account with only the permissions it uses, or turn off the token automount for the pod.",
			Run:         runPowerfulToken,
		},
	)
}

func runLegacyTokens(in *Input, r *Results) {
	if !needs(in, r, evidence.ResTokenSecrets) {
		return
	}
	secrets := append([]evidence.TokenSecret{}, in.Cluster.TokenSecrets...)
	sort.Slice(secrets, func(i, j int) bool {
		if secrets[i].Namespace != secrets[j].Namespace {
			return secrets[i].Namespace < secrets[j].Namespace
		}
		return secrets[i].Name < secrets[j].Name
	})
	for _, s := range secrets {
		loc := report.Location{Object: "Secret/" + s.Namespace + "/" + s.Name}
		age := "created " + ageOf(in, s.Created)
		used := "not used since usage tracking began (1.29)"
		if !s.LastUsed.IsZero() {
			used = "last used " + s.LastUsed.Format("2006-01-02")
		}
		if !s.InvalidSince.IsZero() {
			r.Info(loc, "legacy token of service account %s, %s, %s; invalidated since %s by the token cleaner, delete it", s.ServiceAccount, age, used, s.InvalidSince.Format("2006-01-02"))
			continue
		}
		r.Warn(loc, "legacy token of service account %s that never expires, %s, %s", s.ServiceAccount, age, used)
	}
	if len(secrets) == 0 {
		r.Pass(report.Location{}, "no Secret of type kubernetes.io/service-account-token in any namespace")
	}
}

// ageOf says how long ago t was, in days, against the audit's clock.
func ageOf(in *Input, t time.Time) string {
	if t.IsZero() {
		return "at an unknown time"
	}
	d := in.Now.Sub(t).Hours() / 24
	if d < 1 {
		return "less than a day ago"
	}
	return days(d) + " ago"
}

// saKey names a service account.
type saKey struct{ ns, name string }

// effectiveAutomount tells whether a pod gets a token: the pod's setting
// wins; else the service account's; else true. mounted reports whether the
// pod actually has a projected token volume (admission adds it).
func effectiveAutomount(p evidence.Pod, sas map[saKey]evidence.ServiceAccount) (on bool, why string) {
	if p.Automount != nil {
		return *p.Automount, "the pod sets automountServiceAccountToken"
	}
	if sa, ok := sas[saKey{p.Namespace, p.ServiceAccount}]; ok && sa.Automount != nil {
		return *sa.Automount, "its service account sets automountServiceAccountToken"
	}
	return true, "neither the pod nor its service account turns the automount off"
}

func serviceAccountIndex(in *Input) map[saKey]evidence.ServiceAccount {
	m := make(map[saKey]evidence.ServiceAccount, len(in.Cluster.ServiceAccounts))
	for _, sa := range in.Cluster.ServiceAccounts {
		m[saKey{sa.Namespace, sa.Name}] = sa
	}
	return m
}

// podGroups gathers pods of one owner (a ReplicaSet's replicas share one
// spec), so a deployment of a hundred replicas is one finding.
type podGroup struct {
	first evidence.Pod
	n     int
}

func groupPods(pods []evidence.Pod, keep func(evidence.Pod) bool) []podGroup {
	idx := map[string]int{}
	var out []podGroup
	for _, p := range pods {
		if p.Mirror || !keep(p) {
			continue
		}
		k := p.Namespace + "/" + p.Name
		if p.Owner != "" {
			k = p.Namespace + "/" + p.Owner + "/" + p.ServiceAccount
		}
		if i, ok := idx[k]; ok {
			out[i].n++
			continue
		}
		idx[k] = len(out)
		out = append(out, podGroup{first: p, n: 1})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].first, out[j].first
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

func (g podGroup) location() report.Location {
	return report.Location{Object: "Pod/" + g.first.Namespace + "/" + g.first.Name}
}

func (g podGroup) name() string {
	s := "pod " + g.first.Namespace + "/" + g.first.Name
	if g.n > 1 {
		s += fmt.Sprintf(" (and %d more pods of %s)", g.n-1, g.first.Owner)
	}
	return s
}

func runAutomount(in *Input, r *Results) {
	if !needs(in, r, evidence.ResPods, evidence.ResServiceAccounts) {
		return
	}
	sas := serviceAccountIndex(in)
	off := 0
	groups := groupPods(in.Cluster.Pods, func(p evidence.Pod) bool {
		on, _ := effectiveAutomount(p, sas)
		if !on {
			off++
		}
		return on
	})
	for _, g := range groups {
		_, why := effectiveAutomount(g.first, sas)
		r.Warn(g.location(), "%s mounts a token of service account %s: %s", g.name(), g.first.ServiceAccount, why)
	}
	if len(groups) == 0 {
		if off == 0 {
			r.Pass(report.Location{}, "no pods outside static pods")
		} else {
			r.Pass(report.Location{}, "none of %s mounts a service-account token", phrase.Plural(off, "pod", "pods"))
		}
	}
}

func runDefaultSA(in *Input, r *Results) {
	if !needs(in, r, evidence.ResPods, evidence.ResServiceAccounts) {
		return
	}
	sas := serviceAccountIndex(in)
	groups := groupPods(in.Cluster.Pods, func(p evidence.Pod) bool { return p.ServiceAccount == "default" })
	for _, g := range groups {
		on, _ := effectiveAutomount(g.first, sas)
		token := "without its token mounted"
		if on {
			token = "with its token mounted"
		}
		r.Warn(g.location(), "%s runs as the default service account of %s, %s", g.name(), g.first.Namespace, token)
	}
	if len(groups) == 0 {
		r.Pass(report.Location{}, "no pod runs as a default service account")
	}
}

// powers returns, for every service account, the powerful permissions it
// holds (directly or through its groups), computed once per audit.
func powers(in *Input) map[saKey][]string {
	if in.saPowers != nil {
		return in.saPowers
	}
	byGroup := map[string][]string{}
	bySA := map[saKey][]string{}
	for _, q := range powerfulQuestions {
		for _, h := range holders(in, q) {
			switch h.subject.Kind {
			case rbacv1.ServiceAccountKind:
				k := saKey{h.subject.Namespace, h.subject.Name}
				bySA[k] = phrase.AppendOnce(bySA[k], q.what)
			case rbacv1.GroupKind:
				byGroup[h.subject.Name] = phrase.AppendOnce(byGroup[h.subject.Name], q.what)
			}
		}
	}
	out := map[saKey][]string{}
	for _, sa := range in.Cluster.ServiceAccounts {
		k := saKey{sa.Namespace, sa.Name}
		list := bySA[k]
		for _, g := range rbac.DefaultGroups("system:serviceaccount:" + sa.Namespace + ":" + sa.Name) {
			for _, w := range byGroup[g] {
				list = phrase.AppendOnce(list, w+" (as a member of "+g+")")
			}
		}
		if len(list) > 0 {
			out[k] = list
		}
	}
	// A pod may name a service account that does not exist (yet): its
	// permissions come from bindings all the same.
	for k, list := range bySA {
		if _, ok := out[k]; !ok {
			out[k] = list
		}
	}
	in.saPowers = out
	return out
}

func runPowerfulToken(in *Input, r *Results) {
	if !needs(in, r, append([]evidence.Resource{evidence.ResPods, evidence.ResServiceAccounts}, rbacResources...)...) {
		return
	}
	sas := serviceAccountIndex(in)
	pw := powers(in)
	mounted := 0
	groups := groupPods(in.Cluster.Pods, func(p evidence.Pod) bool {
		on, _ := effectiveAutomount(p, sas)
		if !on && !p.TokenMounted {
			return false
		}
		mounted++
		return len(pw[saKey{p.Namespace, p.ServiceAccount}]) > 0
	})
	for _, g := range groups {
		list := pw[saKey{g.first.Namespace, g.first.ServiceAccount}]
		r.Fail(g.location(), "%s mounts a token of service account %s, which can %s", g.name(), g.first.ServiceAccount, strings.Join(list, "; "))
	}
	switch {
	case len(groups) > 0:
	case mounted == 0:
		r.Pass(report.Location{}, "no pod mounts a service-account token")
	default:
		r.Pass(report.Location{}, "none of the %s that mount a service-account token runs as an account with cluster-wide power", phrase.Plural(mounted, "pod", "pods"))
	}
}
