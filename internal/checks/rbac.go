package checks

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/kubepki/kubepki/internal/evidence"
	"github.com/kubepki/kubepki/internal/inventory"
	"github.com/kubepki/kubepki/internal/phrase"
	"github.com/kubepki/kubepki/internal/rbac"
	"github.com/kubepki/kubepki/internal/report"
)

// The RBAC checks ask the effective-permission index who holds a powerful
// permission, and report every holder that is not one of Kubernetes' own
// components. A subject is judged as Kubernetes judges a request from it:
// a user with the group system:authenticated, a service account with its
// two service-account groups, and a group by a member who has that group
// alone. A user's other groups come from its credential, which RBAC cannot
// see; the groups are judged on their own.

// rbacResources are what every RBAC check reads.
var rbacResources = []evidence.Resource{evidence.ResClusterRoles, evidence.ResClusterRoleBindings, evidence.ResRoles, evidence.ResRoleBindings}

// question is a permission asked about: a principal holds it when, for
// every part, it is allowed at least one of the part's requests.
type question struct {
	what  string // "approve client-certificate CSRs"
	parts [][]rbac.Request
}

func req(verb, group, resource, sub, name, ns string) rbac.Request {
	return rbac.Request{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, Name: name, Namespace: ns}
}

// The signer names whose approve or sign permission covers client
// certificates for kube-apiserver: the signer itself and its domain
// wildcard, which the CSR admission plugin also accepts.
var clientSignerNames = []string{"kubernetes.io/kube-apiserver-client", "kubernetes.io/*"}

func signerRequests(verb string) []rbac.Request {
	var out []rbac.Request
	for _, n := range clientSignerNames {
		out = append(out, req(verb, "certificates.k8s.io", "signers", "", n, ""))
	}
	return out
}

var (
	qApprove = question{what: "approve CSRs for kube-apiserver client certificates", parts: [][]rbac.Request{
		{req("update", "certificates.k8s.io", "certificatesigningrequests", "approval", "", "")},
		signerRequests("approve"),
	}}
	qCreateCSR = req("create", "certificates.k8s.io", "certificatesigningrequests", "", "", "")
	qSign      = question{what: "issue certificates for CSRs of the kube-apiserver client signer", parts: [][]rbac.Request{
		{req("update", "certificates.k8s.io", "certificatesigningrequests", "status", "", "")},
		signerRequests("sign"),
	}}
	qImpersonateMasters = question{what: "impersonate the group system:masters", parts: [][]rbac.Request{
		{req("impersonate", "", "groups", "", "system:masters", "")},
	}}
	qImpersonate = question{what: "impersonate users, service accounts, UIDs or user extras", parts: [][]rbac.Request{{
		req("impersonate", "", "users", "", "", ""),
		req("impersonate", "", "serviceaccounts", "", "", rbac.AnyNamespace),
		req("impersonate", "authentication.k8s.io", "uids", "", "", ""),
		req("impersonate", "authentication.k8s.io", "userextras", "*", "", ""),
	}}}
	qTokens = question{what: "create service-account tokens", parts: [][]rbac.Request{
		{req("create", "", "serviceaccounts", "token", "", rbac.AnyNamespace)},
	}}
	qSecrets = question{what: "read Secrets in kube-system", parts: [][]rbac.Request{{
		req("get", "", "secrets", "", "", "kube-system"),
		req("list", "", "secrets", "", "", "kube-system"),
		req("watch", "", "secrets", "", "", "kube-system"),
	}}}
	qEscalate = question{what: "escalate or bind roles", parts: [][]rbac.Request{{
		req("escalate", "rbac.authorization.k8s.io", "clusterroles", "", "", ""),
		req("bind", "rbac.authorization.k8s.io", "clusterroles", "", "", ""),
		req("escalate", "rbac.authorization.k8s.io", "roles", "", "", rbac.AnyNamespace),
		req("bind", "rbac.authorization.k8s.io", "roles", "", "", rbac.AnyNamespace),
	}}}
	qClusterAdmin = question{what: "do everything (cluster-admin or equivalent)", parts: [][]rbac.Request{
		{req("*", "*", "*", "", "", "")},
	}}
)

// powerfulQuestions are the permissions that make a service-account token
// mounted into a pod a way to the whole cluster.
var powerfulQuestions = []question{qClusterAdmin, qImpersonateMasters, qImpersonate, qApprove, qSecrets, qEscalate, qTokens}

func init() {
	for _, q := range []struct {
		id, title string
		sev       report.Severity
		pci       []string
		cis       []string
		mitre     []string
		q         question
		why, fix  string
	}{
		{"rbac-csr-approvers", "Only Kubernetes components can approve client-certificate CSRs", report.SeverityHigh, []string{"1.3", "5.1"}, []string{"5.1.11"}, []string{"T1649"}, qApprove,
			"Whoever may update certificatesigningrequests/approval and approve for the kubernetes.io/kube-apiserver-client signer (or kubernetes.io/*) decides who gets a client certificate, with any user name and any group but system:masters. Kubernetes cannot revoke such a certificate; with permission to create CSRs too, one person mints credentials alone.",
			"Remove the approve verb on signers (and update on certificatesigningrequests/approval) from everyone but a reviewed approver; issue people's access through an identity provider instead of certificates."},
		{"rbac-csr-signers", "Only Kubernetes components can issue certificates for client CSRs", report.SeverityMedium, []string{"5.1", "1.3"}, nil, []string{"T1649"}, qSign,
			"Updating certificatesigningrequests/status with the sign verb on a signer is how a certificate is attached to an approved request. Anyone allowed to do it for the client signer can hand out certificates signed by a key they hold.",
			"Keep the sign verb on signers for the controller-manager's certificate controller only."},
		{"rbac-impersonate-system-masters", "Nobody can impersonate system:masters", report.SeverityCritical, []string{"1.2", "1.3"}, []string{"5.1.8"}, []string{"T1134", "T1078"}, qImpersonateMasters,
			"Impersonating the group system:masters grants every permission, before any authorizer runs, so no webhook can refuse it and no revocation can stop it.",
			"Remove impersonate on groups (or on the resource name system:masters) from every role bound to these subjects."},
		{"rbac-impersonate", "Impersonation is limited to reviewed subjects", report.SeverityHigh, []string{"1.2"}, []string{"5.1.8"}, []string{"T1134"}, qImpersonate,
			"Impersonating a user or service account acts with its permissions; audit logs then name the impersonated identity first.",
			"Grant impersonate only on named users or service accounts (resourceNames), to reviewed operators."},
		{"rbac-serviceaccount-token-creators", "Few subjects can create service-account tokens", report.SeverityHigh, []string{"1.5", "1.3"}, []string{"5.1.13"}, []string{"T1528"}, qTokens,
			"Creating serviceaccounts/token issues a fresh credential for any service account of the namespace (cluster-wide through a ClusterRoleBinding), with that account's permissions.",
			"Remove create on serviceaccounts/token from roles people and workloads hold; use short-lived projected tokens instead."},
		{"rbac-secret-readers", "Few subjects can read Secrets in kube-system", report.SeverityHigh, []string{"1.4"}, []string{"5.1.2"}, []string{"T1552.007"}, qSecrets,
			"kube-system's Secrets hold bootstrap tokens, legacy service-account tokens of controllers and other control-plane credentials; get, list or watch on them (or on Secrets cluster-wide) is a way to every one of them.",
			"Remove get, list and watch on secrets from cluster-wide roles and from roles bound in kube-system, except for the controllers that need them."},
		{"rbac-escalate-bind", "Few subjects can escalate or bind roles", report.SeverityHigh, []string{"1.2"}, []string{"5.1.8"}, []string{"T1098"}, qEscalate,
			"The escalate and bind verbs lift RBAC's own guard: their holders can grant themselves, or anyone, permissions they do not have.",
			"Remove escalate and bind on roles and clusterroles from everyone but cluster administrators."},
		{"rbac-cluster-admins", "Cluster-admin permissions are held by named people only", report.SeverityHigh, []string{"1.2"}, []string{"5.1.1"}, []string{"T1078.004"}, qClusterAdmin,
			"A subject with every verb on every resource is a cluster administrator whatever its role is called. A group or service account holding it is a shared administrator account.",
			"Bind cluster-admin (or wildcard roles) only to named people's groups from the identity provider; give workloads and service accounts the permissions they use."},
	} {
		q := q
		register(&Check{
			ID: q.id, Title: q.title, Severity: q.sev, Component: "rbac", Scope: report.TargetCluster,
			Controls: report.Controls{PCI: q.pci, CIS: q.cis, MITRE: q.mitre}, Why: q.why, Remediation: q.fix,
			Run: func(in *Input, r *Results) { runQuestion(in, r, q.q) },
		})
	}
	register(
		&Check{
			ID: "rbac-anonymous-access", Title: "Anonymous requests get only Kubernetes' default public permissions",
			Severity: report.SeverityCritical, Component: "rbac", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.1"}, MITRE: []string{"T1078.001"}},
			Why:         "Everything bound to system:anonymous or system:unauthenticated is open to anyone who reaches the API server. Kubernetes' defaults allow the health and version endpoints, and kubeadm adds the cluster-info ConfigMap in kube-public for joining nodes; anything more is unauthenticated access.",
			Remediation: "Delete the bindings that name system:anonymous or system:unauthenticated beyond the defaults, or turn anonymous authentication off.",
			Run:         func(in *Input, r *Results) { runDefaultGrants(in, r, anonymousSubjects) },
		},
		&Check{
			ID: "rbac-authenticated-access", Title: "Every authenticated identity gets only Kubernetes' default permissions",
			Severity: report.SeverityHigh, Component: "rbac", Scope: report.TargetCluster,
			Controls:    report.Controls{PCI: []string{"1.1", "1.5"}, MITRE: []string{"T1078"}},
			Why:         "system:authenticated holds every user, service account and node; system:serviceaccounts every workload's token. A grant to them reaches every credential in the cluster, including ones that were never meant to have access. Kubernetes' defaults give discovery, self-review and the service-account issuer discovery endpoints.",
			Remediation: "Bind permissions to the groups or service accounts that need them instead of system:authenticated or system:serviceaccounts.",
			Run:         func(in *Input, r *Results) { runDefaultGrants(in, r, authenticatedSubjects) },
		},
	)
}

// needs reports notEvaluated, naming the missing read, when any of the
// resources could not be read.
func needs(in *Input, r *Results, res ...evidence.Resource) bool {
	if in.Cluster == nil {
		r.NotEvaluated(report.Location{}, "no cluster evidence: run kubepki audit cluster")
		return false
	}
	var missing []string
	for _, x := range res {
		if why := in.Cluster.Missing(x); why != "" {
			missing = append(missing, fmt.Sprintf("needs permission to %s (%s)", x.Verb(), why))
		}
	}
	if len(missing) > 0 {
		r.NotEvaluated(report.Location{}, "%s", strings.Join(missing, "; "))
		return false
	}
	return true
}

// holder is a subject found to hold a question's permission, with the
// grants that give it.
type holder struct {
	subject rbac.Subject
	grants  []rbac.Grant
}

// holders answers a question: every subject that holds all its parts.
// Answers are kept in the input, since several checks ask the same.
func holders(in *Input, q question) []holder {
	if hs, ok := in.holders[q.what]; ok {
		return hs
	}
	if in.holders == nil {
		in.holders = map[string][]holder{}
	}
	hs := computeHolders(in, q)
	in.holders[q.what] = hs
	return hs
}

// whoCan asks the index once per distinct request and audit.
func (in *Input) whoCan(rq rbac.Request) []rbac.Grant {
	if gs, ok := in.grants[rq]; ok {
		return gs
	}
	if in.grants == nil {
		in.grants = map[rbac.Request][]rbac.Grant{}
	}
	gs := in.RBAC.WhoCan(rq)
	in.grants[rq] = gs
	return gs
}

func computeHolders(in *Input, q question) []holder {
	bySubject := map[rbac.Subject][]rbac.Grant{}
	var order []rbac.Subject
	for _, part := range q.parts {
		for _, rq := range part {
			for _, g := range in.whoCan(rq) {
				if _, seen := bySubject[g.Subject]; !seen {
					order = append(order, g.Subject)
				}
				bySubject[g.Subject] = append(bySubject[g.Subject], g)
			}
		}
	}
	var out []holder
	for _, s := range order {
		if len(q.parts) > 1 {
			// Each part was granted to someone; this subject must hold
			// them all, judged as a request from it.
			if user, groups := asRequester(s); !holds(in, user, groups, q) {
				continue
			}
		}
		out = append(out, holder{subject: s, grants: dedupGrants(bySubject[s])})
	}
	sort.Slice(out, func(i, j int) bool { return subjectString(out[i].subject) < subjectString(out[j].subject) })
	return out
}

// holds answers a question for a request from user with groups, as the
// authorizer would (system:masters included). Requests asked in any
// namespace are answered through the grants that name the requester.
func holds(in *Input, user string, groups []string, q question) bool {
	// Most identities appear in no grant of the question at all: reject
	// them from the set of subjects granted any of its requests before
	// asking the authorizer's exact question.
	mine := subjectsOf(user, groups)
	subjects := questionSubjects(in, q)
	hit := slices.Contains(groups, inventory.SystemMasters)
	for _, s := range mine {
		hit = hit || subjects[s]
	}
	if !hit {
		return false
	}
	for _, part := range q.parts {
		ok := false
		for _, rq := range part {
			if rq.Namespace != rbac.AnyNamespace {
				if allowed, _ := in.RBAC.Allowed(user, groups, rq); allowed {
					ok = true
				}
				continue
			}
			for _, g := range in.whoCan(rq) {
				if slices.Contains(mine, g.Subject) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// questionSubjects is every subject granted any request of a question.
func questionSubjects(in *Input, q question) map[rbac.Subject]bool {
	if m, ok := in.qSubjects[q.what]; ok {
		return m
	}
	if in.qSubjects == nil {
		in.qSubjects = map[string]map[rbac.Subject]bool{}
	}
	m := map[rbac.Subject]bool{}
	for _, part := range q.parts {
		for _, rq := range part {
			for _, g := range in.whoCan(rq) {
				m[g.Subject] = true
			}
		}
	}
	in.qSubjects[q.what] = m
	return m
}

// subjectsOf lists the binding subjects that name a requester: its user
// name, its groups and, for a service account's user name, the service
// account.
func subjectsOf(user string, groups []string) []rbac.Subject {
	out := []rbac.Subject{{Kind: rbacv1.UserKind, Name: user}}
	for _, g := range groups {
		out = append(out, rbac.Subject{Kind: rbacv1.GroupKind, Name: g})
	}
	if rest, ok := strings.CutPrefix(user, "system:serviceaccount:"); ok {
		if ns, name, ok := strings.Cut(rest, ":"); ok {
			out = append(out, rbac.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name})
		}
	}
	return out
}

// asRequester returns the user name and groups a request from the subject
// carries: a group is judged by a member who has that group alone.
func asRequester(s rbac.Subject) (string, []string) {
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		u := "system:serviceaccount:" + s.Namespace + ":" + s.Name
		return u, rbac.DefaultGroups(u)
	case rbacv1.GroupKind:
		if s.Name == "system:unauthenticated" {
			return "system:anonymous", []string{s.Name}
		}
		return "", []string{s.Name, "system:authenticated"}
	default:
		return s.Name, rbac.DefaultGroups(s.Name)
	}
}

func dedupGrants(gs []rbac.Grant) []rbac.Grant {
	seen := map[string]bool{}
	var out []rbac.Grant
	for _, g := range gs {
		k := objectName(g.Binding) + "|" + objectName(g.Role)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, g)
	}
	return out
}

func subjectString(s rbac.Subject) string {
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		return "ServiceAccount " + s.Namespace + "/" + s.Name
	case rbacv1.GroupKind:
		return "Group " + s.Name
	default:
		return "User " + s.Name
	}
}

// builtInBinding reports whether a binding is one Kubernetes or kubeadm
// creates: its name starts with system: or kubeadm:, or it is the
// cluster-admin binding of system:masters.
func builtInBinding(b rbac.ObjectRef) bool {
	name := b.Name
	return strings.HasPrefix(name, "system:") || strings.HasPrefix(name, "kubeadm:") || name == "cluster-admin"
}

// builtInSubject reports whether a subject is one of Kubernetes' own
// identities: a system: user other than system:anonymous (components and
// nodes; the prefix is reserved), the groups system:masters, system:nodes,
// kubeadm's bootstrap-token groups and kubeadm:cluster-admins (the group
// of admin.conf, judged by the node checks), or a service account of
// kube-system (the controllers).
func builtInSubject(s rbac.Subject) bool {
	switch s.Kind {
	case rbacv1.UserKind:
		return strings.HasPrefix(s.Name, "system:") && s.Name != "system:anonymous"
	case rbacv1.GroupKind:
		return s.Name == "system:masters" || s.Name == "system:nodes" || s.Name == "kubeadm:cluster-admins" || strings.HasPrefix(s.Name, "system:bootstrappers:")
	case rbacv1.ServiceAccountKind:
		return s.Namespace == "kube-system"
	}
	return false
}

// builtIn reports whether every grant of a holder is a built-in binding to
// a built-in subject: Kubernetes' own wiring, listed but not blamed.
func (h holder) builtIn() bool {
	if !builtInSubject(h.subject) {
		return false
	}
	for _, g := range h.grants {
		if !builtInBinding(g.Binding) {
			return false
		}
	}
	return true
}

// via describes the grants of a holder for a message.
func (h holder) via() string {
	var parts []string
	for _, g := range h.grants {
		s := objectName(g.Binding) + " → " + objectName(g.Role)
		if g.Namespace != "" {
			s += " (namespace " + g.Namespace + ")"
		} else {
			s += " (cluster-wide)"
		}
		parts = append(parts, s)
	}
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("%d more", len(parts)-3))
	}
	return strings.Join(parts, ", ")
}

func (h holder) location() report.Location {
	if len(h.grants) == 0 {
		return report.Location{}
	}
	return report.Location{Object: objectName(h.grants[0].Binding)}
}

func runQuestion(in *Input, r *Results, q question) {
	if !needs(in, r, rbacResources...) {
		return
	}
	// Cluster-admin holders can do everything; they are reported once,
	// by rbac-cluster-admins, rather than under every question.
	admins := map[rbac.Subject]bool{}
	if q.what != qClusterAdmin.what {
		for _, h := range holders(in, qClusterAdmin) {
			admins[h.subject] = true
		}
	}
	var builtIn []string
	blamed, skipped := 0, 0
	for _, h := range holders(in, q) {
		switch {
		case h.builtIn():
			builtIn = append(builtIn, subjectString(h.subject))
			continue
		case admins[h.subject]:
			skipped++
			continue
		}
		blamed++
		extra := ""
		if q.what == qApprove.what {
			user, groups := asRequester(h.subject)
			if ok, _ := in.RBAC.Allowed(user, groups, qCreateCSR); ok {
				extra = "; it can also create CSRs, so it mints client certificates on its own"
			}
		}
		r.Fail(h.location(), "%s can %s, through %s%s", subjectString(h.subject), q.what, h.via(), extra)
	}
	if blamed > 0 {
		return
	}
	msg := "no subject can " + q.what
	if len(builtIn) > 0 {
		msg = "only Kubernetes' own identities can " + q.what + ": " + strings.Join(builtIn, ", ")
	}
	if skipped > 0 {
		msg += fmt.Sprintf(", besides %s holding cluster-admin, reported by rbac-cluster-admins", phrase.Plural(skipped, "other subject", "other subjects"))
	}
	r.Pass(report.Location{}, "%s", msg)
}

// defaultGrant is a permission Kubernetes or kubeadm gives by default to
// one of the all-encompassing subjects; Namespace is "" for cluster-wide.
type defaultGrant struct {
	Namespace string
	Rule      rbacv1.PolicyRule
}

var (
	publicInfo = rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}}
	discovery  = rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"}}
	basicUser  = []rbacv1.PolicyRule{
		{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
		{Verbs: []string{"create"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"selfsubjectreviews"}},
	}
	issuerDiscovery = rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: []string{"/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks", "/openid/v1/jwks/"}}
	clusterInfo     = rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"cluster-info"}}
)

// allSubjects is a set of all-encompassing subjects and the defaults they
// are allowed.
type allSubjects struct {
	subjects []rbac.Subject
	defaults []defaultGrant
	who      string
}

// anonymousSubjects: the public-info-viewer role (health and version) and
// kubeadm's cluster-info ConfigMap in kube-public, which joining nodes
// read before they hold a credential.
var anonymousSubjects = allSubjects{
	who: "anonymous requests",
	subjects: []rbac.Subject{
		{Kind: rbacv1.UserKind, Name: "system:anonymous"},
		{Kind: rbacv1.GroupKind, Name: "system:unauthenticated"},
	},
	defaults: []defaultGrant{{Rule: publicInfo}, {Namespace: "kube-public", Rule: clusterInfo}},
}

// authenticatedSubjects: public info, discovery, self reviews
// (system:basic-user) and, for service accounts, the issuer discovery
// documents.
var authenticatedSubjects = allSubjects{
	who: "every authenticated identity",
	subjects: []rbac.Subject{
		{Kind: rbacv1.GroupKind, Name: "system:authenticated"},
		{Kind: rbacv1.GroupKind, Name: "system:serviceaccounts"},
	},
	defaults: append([]defaultGrant{{Rule: publicInfo}, {Rule: discovery}, {Rule: issuerDiscovery}},
		defaultGrant{Rule: basicUser[0]}, defaultGrant{Rule: basicUser[1]}),
}

func runDefaultGrants(in *Input, r *Results, all allSubjects) {
	if !needs(in, r, rbacResources...) {
		return
	}
	extra := 0
	for _, s := range all.subjects {
		for _, g := range in.RBAC.RulesFor(s) {
			var allowed []rbacv1.PolicyRule
			for _, d := range all.defaults {
				if d.Namespace == "" || d.Namespace == g.Namespace {
					allowed = append(allowed, d.Rule)
				}
			}
			if rbac.Covers(allowed, g.Rule) {
				continue
			}
			extra++
			scope := "cluster-wide"
			if g.Namespace != "" {
				scope = "in namespace " + g.Namespace
			}
			r.Fail(report.Location{Object: objectName(g.Binding)}, "%s is granted %s %s through %s → %s, beyond Kubernetes' defaults", subjectString(s), describeRule(g.Rule), scope, objectName(g.Binding), objectName(g.Role))
		}
	}
	if extra == 0 {
		names := make([]string, 0, len(all.subjects))
		for _, s := range all.subjects {
			names = append(names, s.Name)
		}
		r.Pass(report.Location{}, "%s (%s): only Kubernetes' default permissions", all.who, strings.Join(names, ", "))
	}
}

// describeRule renders a policy rule for a message: "list, get on secrets"
// or "get on /metrics".
func describeRule(p rbacv1.PolicyRule) string {
	verbs := strings.Join(p.Verbs, ", ")
	if len(p.NonResourceURLs) > 0 {
		return verbs + " on " + strings.Join(p.NonResourceURLs, ", ")
	}
	var res []string
	for _, g := range p.APIGroups {
		for _, rs := range p.Resources {
			if g == "" {
				res = append(res, rs)
			} else {
				res = append(res, rs+"."+g)
			}
		}
	}
	s := verbs + " on " + strings.Join(res, ", ")
	if len(p.ResourceNames) > 0 {
		s += " named " + strings.Join(p.ResourceNames, ", ")
	}
	return s
}

// objectName names a binding or role as report locations do:
// Kind/name or Kind/namespace/name.
func objectName(o rbac.ObjectRef) string {
	if o.Namespace != "" {
		return o.Kind + "/" + o.Namespace + "/" + o.Name
	}
	return o.Kind + "/" + o.Name
}
