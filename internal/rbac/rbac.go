// Package rbac is a pure, in-memory index of Kubernetes RBAC objects that
// answers authorization questions the way kube-apiserver (v1.34) answers them
// with its RBAC authorizer, preceded by the system:masters bypass.
//
// The index is built once from ClusterRoles, ClusterRoleBindings, Roles and
// RoleBindings (k8s.io/api/rbac/v1) and does no I/O. It can
//
//   - decide a single request for a user and its groups (Index.Allowed), as a
//     SubjectAccessReview would;
//   - list every subject some binding grants a request to (Index.WhoCan);
//   - list the rules a subject or a user holds and where they come from
//     (Index.RulesFor, Index.RulesForUser);
//   - tell whether a set of rules covers another rule (Covers), to report
//     grants beyond a baseline.
//
// Semantics follow, in Kubernetes v1.34:
//
//   - plugin/pkg/auth/authorizer/rbac/rbac.go (RuleAllows: the combined
//     "resource/subresource" string, resource versus non-resource requests);
//   - pkg/apis/rbac/v1/evaluation_helpers.go (verb, API group, resource,
//     resource name and non-resource URL matching, including "*",
//     "*/subresource" and trailing-"*" URL prefixes);
//   - pkg/registry/rbac/validation/rule.go (VisitRulesFor: ClusterRoleBindings
//     always, RoleBindings only of the request's namespace, role references of
//     kind Role or ClusterRole only, subject matching with the ServiceAccount
//     namespace defaulting to the RoleBinding's namespace);
//   - pkg/controller/clusterroleaggregation (the rules of a ClusterRole with an
//     aggregationRule are replaced by the ordered, de-duplicated union of the
//     rules of every other ClusterRole one of its selectors matches);
//   - k8s.io/apiserver authorizerfactory (members of system:masters are
//     allowed everything before any other authorizer runs).
//
// Other authorizers an apiserver may run (Node, Webhook, ABAC) are not
// emulated: for users in system:nodes the real apiserver may allow more.
package rbac

import (
	"fmt"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
)

// AnyNamespace as a Request's Namespace asks WhoCan (and RulesForUser) for
// grants in every namespace.
const AnyNamespace = "*"

// Kinds of bindings and roles as they appear in Grant.Binding and Grant.Role.
const (
	KindClusterRoleBinding = "ClusterRoleBinding"
	KindRoleBinding        = "RoleBinding"
	KindClusterRole        = "ClusterRole"
	KindRole               = "Role"
)

// Request is what is being authorized. It is a non-resource request when
// Path is set; Namespace is then ignored, as a SubjectAccessReview's
// nonResourceAttributes carry no namespace. Otherwise it is a resource
// request: Namespace "" means a cluster-scoped request (or a request across
// all namespaces), which only ClusterRoleBindings can allow.
type Request struct {
	Verb        string
	APIGroup    string
	Resource    string
	Subresource string
	Name        string
	Namespace   string
	// Path makes this a non-resource request (for example "/healthz").
	Path string
}

// IsResourceRequest reports whether r is a resource request (Path unset).
func (r Request) IsResourceRequest() bool { return r.Path == "" }

// String describes r for messages.
func (r Request) String() string {
	if !r.IsResourceRequest() {
		return fmt.Sprintf("%s %s", r.Verb, r.Path)
	}
	res := r.Resource
	if r.Subresource != "" {
		res += "/" + r.Subresource
	}
	if r.APIGroup != "" {
		res += "." + r.APIGroup
	}
	if r.Name != "" {
		res += " " + r.Name
	}
	if r.Namespace != "" {
		res += " in " + r.Namespace
	}
	return r.Verb + " " + res
}

// Subject is a User, Group or ServiceAccount a binding names. In grants and
// rule listings a ServiceAccount's Namespace is always set: a RoleBinding's
// subject without one is reported with the binding's namespace.
type Subject struct {
	Kind      string // rbacv1.UserKind, rbacv1.GroupKind or rbacv1.ServiceAccountKind
	Name      string
	Namespace string // ServiceAccount only
}

// String describes s the way the apiserver's RBAC messages do.
func (s Subject) String() string {
	if s.Kind == rbacv1.ServiceAccountKind {
		return fmt.Sprintf("%s %q", s.Kind, s.Name+"/"+s.Namespace)
	}
	return fmt.Sprintf("%s %q", s.Kind, s.Name)
}

// ObjectRef names a binding or role. Namespace is empty for cluster-scoped
// kinds.
type ObjectRef struct {
	Kind      string
	Namespace string
	Name      string
}

// Grant says that Subject is given Rule through Binding, which refers to
// Role. Namespace is "" when the grant is cluster-wide (a
// ClusterRoleBinding) and otherwise the RoleBinding's namespace, the only
// namespace where it applies.
//
// Rule shares its slices with the index; do not modify them.
type Grant struct {
	Subject   Subject
	Binding   ObjectRef
	Role      ObjectRef
	Namespace string
	Rule      rbacv1.PolicyRule
}

// Source describes where the grant comes from, in the apiserver's wording
// (for example `ClusterRoleBinding "x" of ClusterRole "y" to User "z"`).
func (g Grant) Source() string {
	name := g.Binding.Name
	if g.Binding.Namespace != "" {
		name += "/" + g.Binding.Namespace
	}
	return fmt.Sprintf("%s %q of %s %q to %s", g.Binding.Kind, name, g.Role.Kind, g.Role.Name, g.Subject)
}

// Decision is how Allowed reached its answer.
type Decision int

const (
	// NoOpinion: no rule allows the request. With RBAC as the last
	// authorizer, the apiserver denies it.
	NoOpinion Decision = iota
	// AllowedByRBAC: a binding's rule allows the request.
	AllowedByRBAC
	// AllowedByPrivilegedGroup: the user is in system:masters, which the
	// apiserver allows before consulting RBAC.
	AllowedByPrivilegedGroup
)

// String names d.
func (d Decision) String() string {
	switch d {
	case NoOpinion:
		return "NoOpinion"
	case AllowedByRBAC:
		return "AllowedByRBAC"
	case AllowedByPrivilegedGroup:
		return "AllowedByPrivilegedGroup"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Reason explains an Allowed answer.
type Reason struct {
	Decision Decision
	// Grant is the first binding and rule found to allow the request when
	// Decision is AllowedByRBAC, else nil. Which of several allowing
	// bindings is reported may differ from the apiserver, whose listing
	// order is unspecified; the decision does not.
	Grant *Grant
}

// String describes r.
func (r Reason) String() string {
	switch r.Decision {
	case AllowedByPrivilegedGroup:
		return fmt.Sprintf("allowed: member of the privileged group %q", user.SystemPrivilegedGroup)
	case AllowedByRBAC:
		if r.Grant != nil {
			return "RBAC: allowed by " + r.Grant.Source()
		}
		return "RBAC: allowed"
	}
	return "RBAC: no rule allows the request"
}

// DefaultGroups returns the groups the apiserver's authenticators give a user
// of this name when nothing else assigns groups: system:anonymous is in
// system:unauthenticated; a service account (system:serviceaccount:NS:NAME
// with a valid namespace and name) is in system:serviceaccounts,
// system:serviceaccounts:NS and system:authenticated; anyone else is in
// system:authenticated.
func DefaultGroups(userName string) []string {
	if userName == user.Anonymous {
		return []string{user.AllUnauthenticated}
	}
	if ns, _, err := serviceaccount.SplitUsername(userName); err == nil {
		return append(serviceaccount.MakeGroupNames(ns), user.AllAuthenticated)
	}
	return []string{user.AllAuthenticated}
}

// Option changes how New builds an Index.
type Option func(*options)

type options struct {
	storedRulesOnly bool
}

// StoredRulesOnly makes the index use every ClusterRole's rules as given,
// instead of the rules the clusterrole-aggregation controller converges to
// for ClusterRoles with an aggregationRule. The apiserver itself always
// evaluates the stored rules; the default emulates the state after the
// controller has caught up.
func StoredRulesOnly() Option { return func(o *options) { o.storedRulesOnly = true } }

type subjectKind uint8

const (
	subjectUnknown subjectKind = iota
	subjectUser
	subjectGroup
	subjectServiceAccount
)

// bindingSubject is a binding's subject prepared for matching.
type bindingSubject struct {
	kind subjectKind
	// match is what a user must have to match: the user name (User, and
	// ServiceAccount as system:serviceaccount:NS:NAME) or a group name.
	match string
	// never is set for subjects no user can match: unknown kinds, and
	// ServiceAccounts without a namespace in ClusterRoleBindings.
	never bool
	out   Subject
}

type binding struct {
	ref      ObjectRef
	role     int32 // index into Index.roles, -1 when the roleRef resolves to nothing
	subjects []bindingSubject
}

type role struct {
	ref   ObjectRef
	rules []rbacv1.PolicyRule
}

type nsName struct{ namespace, name string }

type span struct{ lo, hi int }

// Index answers RBAC questions about a fixed set of RBAC objects. It is safe
// for concurrent use once built.
type Index struct {
	roles        []role
	clusterRoles map[string]int32
	nsRoles      map[nsName]int32
	crbs         []binding
	rbs          []binding // grouped by namespace, input order within one
	rbNamespaces map[string]span
}

// New builds an index. Objects keep their input order within a kind (for a
// repeated ClusterRole or Role name the first one counts). By default, the
// rules of ClusterRoles with an aggregationRule are those the
// clusterrole-aggregation controller converges to; see StoredRulesOnly.
func New(crs []rbacv1.ClusterRole, crbs []rbacv1.ClusterRoleBinding, roles []rbacv1.Role, rbs []rbacv1.RoleBinding, opts ...Option) *Index {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ix := &Index{
		clusterRoles: make(map[string]int32, len(crs)),
		nsRoles:      make(map[nsName]int32, len(roles)),
		rbNamespaces: make(map[string]span),
	}

	unique := make([]*rbacv1.ClusterRole, 0, len(crs))
	for i := range crs {
		cr := &crs[i]
		if _, dup := ix.clusterRoles[cr.Name]; dup {
			continue
		}
		ix.clusterRoles[cr.Name] = int32(len(ix.roles))
		ix.roles = append(ix.roles, role{ref: ObjectRef{Kind: KindClusterRole, Name: cr.Name}, rules: cr.Rules})
		unique = append(unique, cr)
	}
	if !o.storedRulesOnly {
		for i, rules := range convergeAggregation(unique) {
			ix.roles[i].rules = rules
		}
	}
	for i := range roles {
		r := &roles[i]
		key := nsName{r.Namespace, r.Name}
		if _, dup := ix.nsRoles[key]; dup {
			continue
		}
		ix.nsRoles[key] = int32(len(ix.roles))
		ix.roles = append(ix.roles, role{ref: ObjectRef{Kind: KindRole, Namespace: r.Namespace, Name: r.Name}, rules: r.Rules})
	}

	ix.crbs = make([]binding, len(crbs))
	for i := range crbs {
		b := &crbs[i]
		ix.crbs[i] = binding{
			ref:      ObjectRef{Kind: KindClusterRoleBinding, Name: b.Name},
			role:     ix.resolve(b.RoleRef, ""),
			subjects: prepareSubjects(b.Subjects, ""),
		}
	}

	order := make([]int, len(rbs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rbs[order[a]].Namespace < rbs[order[b]].Namespace })
	ix.rbs = make([]binding, 0, len(rbs))
	for _, i := range order {
		b := &rbs[i]
		if b.Namespace == "" {
			// The authorizer only lists RoleBindings of a non-empty
			// request namespace: one without a namespace never applies.
			continue
		}
		sp, ok := ix.rbNamespaces[b.Namespace]
		if !ok {
			sp.lo = len(ix.rbs)
		}
		ix.rbs = append(ix.rbs, binding{
			ref:      ObjectRef{Kind: KindRoleBinding, Namespace: b.Namespace, Name: b.Name},
			role:     ix.resolve(b.RoleRef, b.Namespace),
			subjects: prepareSubjects(b.Subjects, b.Namespace),
		})
		sp.hi = len(ix.rbs)
		ix.rbNamespaces[b.Namespace] = sp
	}
	return ix
}

// resolve finds the role a roleRef names, as GetRoleReferenceRules does: a
// Role in the binding's namespace (never for a ClusterRoleBinding), or a
// ClusterRole. The roleRef's apiGroup is not consulted.
func (ix *Index) resolve(ref rbacv1.RoleRef, bindingNamespace string) int32 {
	switch ref.Kind {
	case KindRole:
		if bindingNamespace == "" {
			return -1
		}
		if i, ok := ix.nsRoles[nsName{bindingNamespace, ref.Name}]; ok {
			return i
		}
	case KindClusterRole:
		if i, ok := ix.clusterRoles[ref.Name]; ok {
			return i
		}
	}
	return -1
}

// prepareSubjects precomputes what a user must have to match each subject.
// A ServiceAccount subject without a namespace takes the RoleBinding's; in
// a ClusterRoleBinding it matches no one.
func prepareSubjects(subjects []rbacv1.Subject, bindingNamespace string) []bindingSubject {
	out := make([]bindingSubject, len(subjects))
	for i, s := range subjects {
		bs := bindingSubject{out: Subject{Kind: s.Kind, Name: s.Name}}
		switch s.Kind {
		case rbacv1.UserKind:
			bs.kind, bs.match = subjectUser, s.Name
		case rbacv1.GroupKind:
			bs.kind, bs.match = subjectGroup, s.Name
		case rbacv1.ServiceAccountKind:
			bs.kind = subjectServiceAccount
			ns := s.Namespace
			if ns == "" {
				ns = bindingNamespace
			}
			bs.out.Namespace = ns
			if ns == "" {
				bs.never = true
			} else {
				bs.match = serviceaccount.MakeUsername(ns, s.Name)
			}
		default:
			bs.never = true
		}
		out[i] = bs
	}
	return out
}

// appliesTo returns the first of b's subjects that matches the user, as the
// authorizer's appliesTo does.
func (b *binding) appliesTo(userName string, groups []string) *bindingSubject {
	for i := range b.subjects {
		s := &b.subjects[i]
		if s.never {
			continue
		}
		switch s.kind {
		case subjectUser, subjectServiceAccount:
			if s.match == userName {
				return s
			}
		case subjectGroup:
			for _, g := range groups {
				if g == s.match {
					return s
				}
			}
		}
	}
	return nil
}

func (ix *Index) grant(b *binding, s *bindingSubject, rule *rbacv1.PolicyRule) Grant {
	return Grant{
		Subject:   s.out,
		Binding:   b.ref,
		Role:      ix.roles[b.role].ref,
		Namespace: b.ref.Namespace,
		Rule:      *rule,
	}
}

// roleBindings returns the RoleBindings that apply to requests in namespace:
// none for "", all for AnyNamespace when all is set, else those of the
// namespace.
func (ix *Index) roleBindings(namespace string, all bool) []binding {
	switch {
	case namespace == "":
		return nil
	case all && namespace == AnyNamespace:
		return ix.rbs
	}
	sp, ok := ix.rbNamespaces[namespace]
	if !ok {
		return nil
	}
	return ix.rbs[sp.lo:sp.hi]
}

// visit calls fn for every binding with a resolved role that applies to the
// user, in the authorizer's order: ClusterRoleBindings, then the
// RoleBindings of namespace (of every namespace for AnyNamespace when all
// is set). fn returns false to stop.
func (ix *Index) visit(userName string, groups []string, namespace string, all bool, fn func(b *binding, s *bindingSubject) bool) {
	for i := range ix.crbs {
		b := &ix.crbs[i]
		if b.role < 0 {
			continue
		}
		if s := b.appliesTo(userName, groups); s != nil && !fn(b, s) {
			return
		}
	}
	rbs := ix.roleBindings(namespace, all)
	for i := range rbs {
		b := &rbs[i]
		if b.role < 0 {
			continue
		}
		if s := b.appliesTo(userName, groups); s != nil && !fn(b, s) {
			return
		}
	}
}

// Allowed answers r for the user as kube-apiserver would with its
// system:masters bypass followed by RBAC: groups are taken as given (a
// SubjectAccessReview's spec.groups; see DefaultGroups for what
// authentication adds). r.Namespace is taken literally, AnyNamespace
// included.
func (ix *Index) Allowed(userName string, groups []string, r Request) (bool, Reason) {
	for _, g := range groups {
		if g == user.SystemPrivilegedGroup {
			return true, Reason{Decision: AllowedByPrivilegedGroup}
		}
	}
	m := newMatcher(r)
	var found *Grant
	ix.visit(userName, groups, m.namespace, false, func(b *binding, s *bindingSubject) bool {
		rules := ix.roles[b.role].rules
		for i := range rules {
			if m.allows(&rules[i]) {
				g := ix.grant(b, s, &rules[i])
				found = &g
				return false
			}
		}
		return true
	})
	if found == nil {
		return false, Reason{Decision: NoOpinion}
	}
	return true, Reason{Decision: AllowedByRBAC, Grant: found}
}

// WhoCan returns a Grant for every subject of every binding whose role has a
// rule allowing r, in binding order (ClusterRoleBindings, then RoleBindings
// by namespace), with the first allowing rule of the role. Which bindings
// count depends on r.Namespace:
//
//   - AnyNamespace: ClusterRoleBindings and the RoleBindings of every
//     namespace, each Grant telling the namespace it holds in;
//   - "": a cluster-scoped request, so ClusterRoleBindings only;
//   - any other value: ClusterRoleBindings and that namespace's RoleBindings.
//
// Non-resource requests are only ever allowed by ClusterRoleBindings.
// Subjects that can never match (unknown kinds, ServiceAccounts without a
// namespace in ClusterRoleBindings) are left out, and so is system:masters,
// which no binding is needed for.
func (ix *Index) WhoCan(r Request) []Grant {
	m := newMatcher(r)
	// memo[i] is 0 when role i has not been evaluated for r, -1 when none of
	// its rules allow r, and k+1 when rule k is the first that does.
	memo := make([]int32, len(ix.roles))
	var out []Grant
	scan := func(bs []binding) {
		for i := range bs {
			b := &bs[i]
			if b.role < 0 || len(b.subjects) == 0 {
				continue
			}
			k := memo[b.role]
			if k == 0 {
				k = -1
				rules := ix.roles[b.role].rules
				for j := range rules {
					if m.allows(&rules[j]) {
						k = int32(j) + 1
						break
					}
				}
				memo[b.role] = k
			}
			if k < 0 {
				continue
			}
			rule := &ix.roles[b.role].rules[k-1]
			for j := range b.subjects {
				if s := &b.subjects[j]; !s.never {
					out = append(out, ix.grant(b, s, rule))
				}
			}
		}
	}
	scan(ix.crbs)
	scan(ix.roleBindings(m.namespace, true))
	return out
}

// RulesFor returns the rules every binding naming s gives it, one Grant per
// rule, in binding order, across all namespaces. Users and ServiceAccounts
// are identified by user name, as the authorizer does: a ServiceAccount
// (whose Namespace is required) also matches User subjects named
// system:serviceaccount:NS:NAME, and the other way round. Groups a user
// would be in are not followed; see RulesForUser for that.
func (ix *Index) RulesFor(s Subject) []Grant {
	var want bindingSubject
	switch s.Kind {
	case rbacv1.UserKind:
		want = bindingSubject{kind: subjectUser, match: s.Name}
	case rbacv1.GroupKind:
		want = bindingSubject{kind: subjectGroup, match: s.Name}
	case rbacv1.ServiceAccountKind:
		if s.Namespace == "" {
			return nil
		}
		want = bindingSubject{kind: subjectUser, match: serviceaccount.MakeUsername(s.Namespace, s.Name)}
	default:
		return nil
	}
	var out []Grant
	collect := func(bs []binding) {
		for i := range bs {
			b := &bs[i]
			if b.role < 0 {
				continue
			}
			for j := range b.subjects {
				bsub := &b.subjects[j]
				if bsub.never || bsub.match != want.match || (bsub.kind == subjectGroup) != (want.kind == subjectGroup) {
					continue
				}
				out = ix.appendRules(out, b, bsub)
				break
			}
		}
	}
	collect(ix.crbs)
	collect(ix.rbs)
	return out
}

// RulesForUser returns the rules that apply to the user in namespace, one
// Grant per rule, as the authorizer visits them (and as a
// SelfSubjectRulesReview lists them, less the system:masters bypass):
// ClusterRoleBindings' rules, then for a non-empty namespace its
// RoleBindings' rules. AnyNamespace gives the RoleBindings of every
// namespace.
func (ix *Index) RulesForUser(userName string, groups []string, namespace string) []Grant {
	var out []Grant
	ix.visit(userName, groups, namespace, true, func(b *binding, s *bindingSubject) bool {
		out = ix.appendRules(out, b, s)
		return true
	})
	return out
}

func (ix *Index) appendRules(out []Grant, b *binding, s *bindingSubject) []Grant {
	rules := ix.roles[b.role].rules
	for k := range rules {
		out = append(out, ix.grant(b, s, &rules[k]))
	}
	return out
}

// ClusterRoleRules returns the effective rules of the named ClusterRole
// (aggregated unless the index was built with StoredRulesOnly). The slice
// belongs to the index; do not modify it.
func (ix *Index) ClusterRoleRules(name string) ([]rbacv1.PolicyRule, bool) {
	i, ok := ix.clusterRoles[name]
	if !ok {
		return nil, false
	}
	return ix.roles[i].rules, true
}

// RoleRules returns the rules of the Role namespace/name. The slice belongs
// to the index; do not modify it.
func (ix *Index) RoleRules(namespace, name string) ([]rbacv1.PolicyRule, bool) {
	i, ok := ix.nsRoles[nsName{namespace, name}]
	if !ok {
		return nil, false
	}
	return ix.roles[i].rules, true
}

// Subjects returns the distinct subjects of grants, sorted by kind,
// namespace and name.
func Subjects(grants []Grant) []Subject {
	seen := make(map[Subject]struct{}, len(grants))
	var out []Subject
	for _, g := range grants {
		if _, ok := seen[g.Subject]; ok {
			continue
		}
		seen[g.Subject] = struct{}{}
		out = append(out, g.Subject)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}
