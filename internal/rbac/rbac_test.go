package rbac

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func l(xs ...string) []string { return xs }

func resRule(verbs, groups, resources []string, names ...string) rbacv1.PolicyRule {
	r := rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources}
	if len(names) > 0 {
		r.ResourceNames = names
	}
	return r
}

func urlRule(verbs []string, urls ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, NonResourceURLs: urls}
}

func clusterRole(name string, labels map[string]string, rules ...rbacv1.PolicyRule) rbacv1.ClusterRole {
	return rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Rules: rules}
}

func aggregated(cr rbacv1.ClusterRole, selectors ...metav1.LabelSelector) rbacv1.ClusterRole {
	cr.AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: selectors}
	return cr
}

func nsRole(ns, name string, rules ...rbacv1.PolicyRule) rbacv1.Role {
	return rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Rules: rules}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func groupSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func saSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

func ref(kind, name string) rbacv1.RoleRef {
	return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
}

func crb(name string, roleRef rbacv1.RoleRef, subjects ...rbacv1.Subject) rbacv1.ClusterRoleBinding {
	return rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, RoleRef: roleRef, Subjects: subjects}
}

func rb(ns, name string, roleRef rbacv1.RoleRef, subjects ...rbacv1.Subject) rbacv1.RoleBinding {
	return rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, RoleRef: roleRef, Subjects: subjects}
}

// fixture is a small cluster exercising every rule and binding feature.
func fixture(opts ...Option) *Index {
	core := l("")
	crs := []rbacv1.ClusterRole{
		clusterRole("pod-reader", nil, resRule(l("get", "list", "watch"), core, l("pods"))),
		clusterRole("pod-logs", nil, resRule(l("get"), core, l("pods/log"))),
		clusterRole("scaler", nil, resRule(l("get", "update"), l("*"), l("*/scale"))),
		clusterRole("named-cm", nil, resRule(l("get", "list", "update"), core, l("configmaps"), "cm-a", "cm-b")),
		clusterRole("everything", nil, resRule(l("*"), l("*"), l("*"))),
		clusterRole("health", nil, urlRule(l("get"), "/healthz", "/logs/*", "/metrics")),
		aggregated(clusterRole("agg-parent", nil, resRule(l("delete"), core, l("secrets"))),
			metav1.LabelSelector{MatchLabels: map[string]string{"rbac.example/aggregate-to-parent": "true"}},
			metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: l("gold", "silver")}}},
		),
		clusterRole("agg-a", map[string]string{"rbac.example/aggregate-to-parent": "true"}, resRule(l("list"), core, l("services"))),
		clusterRole("agg-b", map[string]string{"tier": "gold"}, resRule(l("get"), core, l("nodes")), resRule(l("list"), core, l("services"))),
		clusterRole("agg-c", map[string]string{"tier": "bronze"}, resRule(l("get"), core, l("persistentvolumes"))),
	}
	roles := []rbacv1.Role{
		nsRole("ns1", "secret-reader", resRule(l("get"), core, l("secrets"))),
		nsRole("ns2", "ns2-only", resRule(l("list"), core, l("secrets"))),
	}
	crbs := []rbacv1.ClusterRoleBinding{
		crb("crb-alice", ref(KindClusterRole, "pod-reader"), userSubject("alice")),
		crb("crb-admins", ref(KindClusterRole, "everything"), groupSubject("admins")),
		crb("crb-health", ref(KindClusterRole, "health"), groupSubject("system:authenticated")),
		crb("crb-ghost", ref(KindClusterRole, "ghost"), userSubject("ghost-user")),
		crb("crb-role-ref", ref(KindRole, "secret-reader"), userSubject("carol")),
		crb("crb-bad-kind", ref("Bogus", "pod-reader"), userSubject("dave")),
		crb("crb-sa-no-ns", ref(KindClusterRole, "pod-reader"), saSubject("", "nons")),
		crb("crb-builder", ref(KindClusterRole, "scaler"), saSubject("ns1", "builder")),
		crb("crb-erin", ref(KindClusterRole, "agg-parent"), userSubject("erin")),
		crb("crb-case", ref(KindClusterRole, "pod-reader"), rbacv1.Subject{Kind: "user", Name: "mallory"}),
	}
	rbs := []rbacv1.RoleBinding{
		rb("ns1", "rb-secrets", ref(KindRole, "secret-reader"), userSubject("bob"), saSubject("", "deployer")),
		rb("ns1", "rb-logs", ref(KindClusterRole, "pod-logs"), groupSubject("devs")),
		rb("ns2", "rb-health", ref(KindClusterRole, "health"), userSubject("frank")),
		rb("ns1", "rb-missing", ref(KindRole, "missing"), userSubject("bob")),
		rb("ns2", "rb-cm", ref(KindClusterRole, "named-cm"), userSubject("gina")),
		rb("ns2", "rb-cross", ref(KindRole, "secret-reader"), userSubject("hank")),
		rb("ns2", "rb-foreign-sa", ref(KindRole, "ns2-only"), saSubject("ns1", "deployer")),
	}
	return New(crs, crbs, roles, rbs, opts...)
}

func TestAllowed(t *testing.T) {
	full := fixture()
	stored := fixture(StoredRulesOnly())
	pods := func(verb, ns string) Request { return Request{Verb: verb, Resource: "pods", Namespace: ns} }
	tests := []struct {
		name   string
		ix     *Index
		user   string
		groups []string
		req    Request
		want   Decision
		via    string // expected Grant.Source() when allowed by RBAC
	}{
		{name: "user through ClusterRoleBinding in a namespace", user: "alice", req: pods("get", "ns1"), want: AllowedByRBAC,
			via: `ClusterRoleBinding "crb-alice" of ClusterRole "pod-reader" to User "alice"`},
		{name: "ClusterRoleBinding applies cluster-wide", user: "alice", req: pods("list", ""), want: AllowedByRBAC},
		{name: "verb not granted", user: "alice", req: pods("delete", "ns1"), want: NoOpinion},
		{name: "verb star in request needs star in rule", user: "alice", req: pods("*", "ns1"), want: NoOpinion},
		{name: "API group must match", user: "alice", req: Request{Verb: "get", APIGroup: "apps", Resource: "pods", Namespace: "ns1"}, want: NoOpinion},
		{name: "plain resource does not match its subresource", user: "alice", req: Request{Verb: "get", Resource: "pods", Subresource: "log", Namespace: "ns1"}, want: NoOpinion},
		{name: "subresource through RoleBinding to ClusterRole", user: "dan", groups: l("devs"), req: Request{Verb: "get", Resource: "pods", Subresource: "log", Namespace: "ns1"}, want: AllowedByRBAC,
			via: `RoleBinding "rb-logs/ns1" of ClusterRole "pod-logs" to Group "devs"`},
		{name: "combined resource given in Resource matches", user: "dan", groups: l("devs"), req: Request{Verb: "get", Resource: "pods/log", Namespace: "ns1"}, want: AllowedByRBAC},
		{name: "subresource rule does not match the parent resource", user: "dan", groups: l("devs"), req: pods("get", "ns1"), want: NoOpinion},
		{name: "RoleBinding to ClusterRole only in its namespace", user: "dan", groups: l("devs"), req: Request{Verb: "get", Resource: "pods", Subresource: "log", Namespace: "ns2"}, want: NoOpinion},
		{name: "RoleBinding not used for cluster-scoped request", user: "dan", groups: l("devs"), req: Request{Verb: "get", Resource: "pods", Subresource: "log"}, want: NoOpinion},
		{name: "star-slash-scale matches deployments scale", user: "system:serviceaccount:ns1:builder", req: Request{Verb: "update", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Namespace: "ns3"}, want: AllowedByRBAC},
		{name: "star-slash-scale matches core scale", user: "system:serviceaccount:ns1:builder", req: Request{Verb: "get", Resource: "replicationcontrollers", Subresource: "scale", Namespace: "ns3"}, want: AllowedByRBAC},
		{name: "star-slash-scale does not match the resource", user: "system:serviceaccount:ns1:builder", req: Request{Verb: "get", APIGroup: "apps", Resource: "deployments", Namespace: "ns3"}, want: NoOpinion},
		{name: "star-slash-scale does not match other subresources", user: "system:serviceaccount:ns1:builder", req: Request{Verb: "get", APIGroup: "apps", Resource: "deployments", Subresource: "status", Namespace: "ns3"}, want: NoOpinion},
		{name: "star-slash-scale does not match scale without subresource", user: "system:serviceaccount:ns1:builder", req: Request{Verb: "get", APIGroup: "apps", Resource: "deployments/scale", Namespace: "ns3"}, want: NoOpinion},
		{name: "resourceNames lists the name", user: "gina", req: Request{Verb: "get", Resource: "configmaps", Name: "cm-a", Namespace: "ns2"}, want: AllowedByRBAC},
		{name: "resourceNames does not list the name", user: "gina", req: Request{Verb: "get", Resource: "configmaps", Name: "cm-c", Namespace: "ns2"}, want: NoOpinion},
		{name: "resourceNames with a list request", user: "gina", req: Request{Verb: "list", Resource: "configmaps", Namespace: "ns2"}, want: NoOpinion},
		{name: "exact URL", user: "u", groups: l("system:authenticated"), req: Request{Verb: "get", Path: "/healthz"}, want: AllowedByRBAC},
		{name: "trailing star URL prefix", user: "u", groups: l("system:authenticated"), req: Request{Verb: "get", Path: "/logs/kube-apiserver.log"}, want: AllowedByRBAC},
		{name: "trailing star URL does not match the bare prefix", user: "u", groups: l("system:authenticated"), req: Request{Verb: "get", Path: "/logs"}, want: NoOpinion},
		{name: "URL without star is not a prefix", user: "u", groups: l("system:authenticated"), req: Request{Verb: "get", Path: "/healthz/ready"}, want: NoOpinion},
		{name: "URL verb must match", user: "u", groups: l("system:authenticated"), req: Request{Verb: "post", Path: "/healthz"}, want: NoOpinion},
		{name: "non-resource request never through RoleBinding", user: "frank", req: Request{Verb: "get", Path: "/healthz", Namespace: "ns2"}, want: NoOpinion},
		{name: "resource rule grants no URL", user: "root", groups: l("admins"), req: Request{Verb: "get", Path: "/healthz"}, want: NoOpinion},
		{name: "Role through RoleBinding", user: "bob", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns1"}, want: AllowedByRBAC,
			via: `RoleBinding "rb-secrets/ns1" of Role "secret-reader" to User "bob"`},
		{name: "Role not in other namespaces", user: "bob", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns2"}, want: NoOpinion},
		{name: "empty ServiceAccount namespace in RoleBinding means the binding namespace", user: "system:serviceaccount:ns1:deployer", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns1"}, want: AllowedByRBAC,
			via: `RoleBinding "rb-secrets/ns1" of Role "secret-reader" to ServiceAccount "deployer/ns1"`},
		{name: "empty ServiceAccount namespace does not match other namespaces", user: "system:serviceaccount:ns2:deployer", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns1"}, want: NoOpinion},
		{name: "ServiceAccount from another namespace in RoleBinding", user: "system:serviceaccount:ns1:deployer", req: Request{Verb: "list", Resource: "secrets", Namespace: "ns2"}, want: AllowedByRBAC},
		{name: "ServiceAccount subject needs the exact user name", user: "deployer", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns1"}, want: NoOpinion},
		{name: "ServiceAccount without namespace in ClusterRoleBinding matches nobody", user: "system:serviceaccount:default:nons", req: pods("get", "default"), want: NoOpinion},
		{name: "ServiceAccount without namespace in ClusterRoleBinding not matched by empty namespace", user: "system:serviceaccount::nons", req: pods("get", "default"), want: NoOpinion},
		{name: "binding to missing ClusterRole", user: "ghost-user", req: pods("get", "ns1"), want: NoOpinion},
		{name: "ClusterRoleBinding to a Role grants nothing", user: "carol", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns1"}, want: NoOpinion},
		{name: "RoleBinding to a Role of another namespace", user: "hank", req: Request{Verb: "get", Resource: "secrets", Namespace: "ns2"}, want: NoOpinion},
		{name: "unknown roleRef kind", user: "dave", req: pods("get", "ns1"), want: NoOpinion},
		{name: "subject kind is case-sensitive", user: "mallory", req: pods("get", "ns1"), want: NoOpinion},
		{name: "Group subject does not match a user of that name", user: "admins", req: pods("get", "ns1"), want: NoOpinion},
		{name: "User subject does not match a group of that name", user: "x", groups: l("alice"), req: pods("get", "ns1"), want: NoOpinion},
		{name: "wildcard role", user: "zed", groups: l("admins"), req: Request{Verb: "deletecollection", APIGroup: "batch", Resource: "jobs", Subresource: "status", Namespace: "any"}, want: AllowedByRBAC},
		{name: "wildcard role allows the star verb", user: "zed", groups: l("admins"), req: pods("*", ""), want: AllowedByRBAC},
		{name: "system:masters bypass", user: "root", groups: l("system:authenticated", "system:masters"), req: Request{Verb: "delete", Resource: "nodes"}, want: AllowedByPrivilegedGroup},
		{name: "system:masters bypass for URLs", user: "root", groups: l("system:masters"), req: Request{Verb: "post", Path: "/anything"}, want: AllowedByPrivilegedGroup},
		{name: "aggregated rule from first selector", user: "erin", req: Request{Verb: "list", Resource: "services", Namespace: "ns1"}, want: AllowedByRBAC},
		{name: "aggregated rule from second selector", user: "erin", req: Request{Verb: "get", Resource: "nodes"}, want: AllowedByRBAC},
		{name: "aggregation replaces the stored rules", user: "erin", req: Request{Verb: "delete", Resource: "secrets", Namespace: "ns1"}, want: NoOpinion},
		{name: "unselected role is not aggregated", user: "erin", req: Request{Verb: "get", Resource: "persistentvolumes"}, want: NoOpinion},
		{name: "stored rules only keeps the stored rules", ix: stored, user: "erin", req: Request{Verb: "delete", Resource: "secrets", Namespace: "ns1"}, want: AllowedByRBAC},
		{name: "stored rules only does not aggregate", ix: stored, user: "erin", req: Request{Verb: "list", Resource: "services", Namespace: "ns1"}, want: NoOpinion},
		{name: "namespace star is literal for Allowed", user: "bob", req: Request{Verb: "get", Resource: "secrets", Namespace: AnyNamespace}, want: NoOpinion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := tt.ix
			if ix == nil {
				ix = full
			}
			got, reason := ix.Allowed(tt.user, tt.groups, tt.req)
			if got != (tt.want != NoOpinion) || reason.Decision != tt.want {
				t.Fatalf("Allowed(%q, %q, %v) = %v, %v; want %v", tt.user, tt.groups, tt.req, got, reason, tt.want)
			}
			if (reason.Grant != nil) != (tt.want == AllowedByRBAC) {
				t.Fatalf("reason grant = %v for decision %v", reason.Grant, reason.Decision)
			}
			if tt.via != "" {
				if diff := cmp.Diff(tt.via, reason.Grant.Source()); diff != "" {
					t.Errorf("source (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestAllowedReasonGrant(t *testing.T) {
	ix := fixture()
	_, reason := ix.Allowed("system:serviceaccount:ns1:builder", nil, Request{Verb: "update", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Namespace: "ns1"})
	want := &Grant{
		Subject: Subject{Kind: rbacv1.ServiceAccountKind, Name: "builder", Namespace: "ns1"},
		Binding: ObjectRef{Kind: KindClusterRoleBinding, Name: "crb-builder"},
		Role:    ObjectRef{Kind: KindClusterRole, Name: "scaler"},
		Rule:    resRule(l("get", "update"), l("*"), l("*/scale")),
	}
	if diff := cmp.Diff(want, reason.Grant); diff != "" {
		t.Errorf("grant (-want +got):\n%s", diff)
	}
	if got, want := reason.String(), `RBAC: allowed by ClusterRoleBinding "crb-builder" of ClusterRole "scaler" to ServiceAccount "builder/ns1"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// grantLines renders grants compactly for diffs.
func grantLines(grants []Grant) []string {
	var out []string
	for _, g := range grants {
		s := g.Subject.Kind + ":" + g.Subject.Name
		if g.Subject.Namespace != "" {
			s = g.Subject.Kind + ":" + g.Subject.Namespace + "/" + g.Subject.Name
		}
		b := g.Binding.Kind + " " + g.Binding.Name
		if g.Binding.Namespace != "" {
			b = g.Binding.Kind + " " + g.Binding.Namespace + "/" + g.Binding.Name
		}
		out = append(out, fmt.Sprintf("%s <- %s (%s %s) ns=%q", s, b, g.Role.Kind, g.Role.Name, g.Namespace))
	}
	return out
}

func TestWhoCan(t *testing.T) {
	ix := fixture()
	tests := []struct {
		name string
		req  Request
		want []string
	}{
		{
			name: "one namespace: ClusterRoleBindings and that namespace's RoleBindings",
			req:  Request{Verb: "get", Resource: "secrets", Namespace: "ns1"},
			want: []string{
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
				`User:bob <- RoleBinding ns1/rb-secrets (Role secret-reader) ns="ns1"`,
				`ServiceAccount:ns1/deployer <- RoleBinding ns1/rb-secrets (Role secret-reader) ns="ns1"`,
			},
		},
		{
			name: "other namespace leaves out ns1 RoleBindings",
			req:  Request{Verb: "list", Resource: "secrets", Namespace: "ns2"},
			want: []string{
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
				`ServiceAccount:ns1/deployer <- RoleBinding ns2/rb-foreign-sa (Role ns2-only) ns="ns2"`,
			},
		},
		{
			name: "cluster-scoped request: ClusterRoleBindings only",
			req:  Request{Verb: "get", Resource: "secrets"},
			want: []string{
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
			},
		},
		{
			name: "any namespace: RoleBindings of every namespace with their namespace",
			req:  Request{Verb: "get", Resource: "configmaps", Name: "cm-b", Namespace: AnyNamespace},
			want: []string{
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
				`User:gina <- RoleBinding ns2/rb-cm (ClusterRole named-cm) ns="ns2"`,
			},
		},
		{
			name: "any namespace with subresource",
			req:  Request{Verb: "get", Resource: "pods", Subresource: "log", Namespace: AnyNamespace},
			want: []string{
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
				`Group:devs <- RoleBinding ns1/rb-logs (ClusterRole pod-logs) ns="ns1"`,
			},
		},
		{
			name: "never-matching subjects and unresolved roles are left out",
			req:  Request{Verb: "get", Resource: "pods", Namespace: "ns1"},
			want: []string{
				`User:alice <- ClusterRoleBinding crb-alice (ClusterRole pod-reader) ns=""`,
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
			},
		},
		{
			name: "non-resource request ignores RoleBindings even for any namespace",
			req:  Request{Verb: "get", Path: "/logs/x", Namespace: AnyNamespace},
			want: []string{
				`Group:system:authenticated <- ClusterRoleBinding crb-health (ClusterRole health) ns=""`,
			},
		},
		{
			name: "aggregated role",
			req:  Request{Verb: "list", Resource: "services", Namespace: AnyNamespace},
			want: []string{
				`Group:admins <- ClusterRoleBinding crb-admins (ClusterRole everything) ns=""`,
				`User:erin <- ClusterRoleBinding crb-erin (ClusterRole agg-parent) ns=""`,
			},
		},
		{
			name: "nobody",
			req:  Request{Verb: "get", Path: "/nothing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, grantLines(ix.WhoCan(tt.req))); diff != "" {
				t.Errorf("WhoCan(%v) (-want +got):\n%s", tt.req, diff)
			}
		})
	}
}

func TestWhoCanRule(t *testing.T) {
	ix := fixture()
	got := ix.WhoCan(Request{Verb: "update", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Namespace: "ns9"})
	want := []rbacv1.PolicyRule{
		resRule(l("*"), l("*"), l("*")),
		resRule(l("get", "update"), l("*"), l("*/scale")),
	}
	var rules []rbacv1.PolicyRule
	for _, g := range got {
		rules = append(rules, g.Rule)
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("matched rules (-want +got):\n%s", diff)
	}
	wantSubjects := []Subject{
		{Kind: rbacv1.GroupKind, Name: "admins"},
		{Kind: rbacv1.ServiceAccountKind, Namespace: "ns1", Name: "builder"},
	}
	if diff := cmp.Diff(wantSubjects, Subjects(got)); diff != "" {
		t.Errorf("Subjects (-want +got):\n%s", diff)
	}
}

func TestRulesFor(t *testing.T) {
	ix := fixture()
	deployerRules := []string{
		`ServiceAccount:ns1/deployer <- RoleBinding ns1/rb-secrets (Role secret-reader) ns="ns1"`,
		`ServiceAccount:ns1/deployer <- RoleBinding ns2/rb-foreign-sa (Role ns2-only) ns="ns2"`,
	}
	tests := []struct {
		name    string
		subject Subject
		want    []string
	}{
		{name: "group", subject: Subject{Kind: rbacv1.GroupKind, Name: "system:authenticated"},
			want: []string{`Group:system:authenticated <- ClusterRoleBinding crb-health (ClusterRole health) ns=""`}},
		{name: "service account across namespaces", subject: Subject{Kind: rbacv1.ServiceAccountKind, Namespace: "ns1", Name: "deployer"}, want: deployerRules},
		{name: "service account user name", subject: Subject{Kind: rbacv1.UserKind, Name: "system:serviceaccount:ns1:deployer"}, want: deployerRules},
		{name: "service account without namespace", subject: Subject{Kind: rbacv1.ServiceAccountKind, Name: "deployer"}},
		{name: "aggregated role gives one grant per effective rule", subject: Subject{Kind: rbacv1.UserKind, Name: "erin"}, want: []string{
			`User:erin <- ClusterRoleBinding crb-erin (ClusterRole agg-parent) ns=""`,
			`User:erin <- ClusterRoleBinding crb-erin (ClusterRole agg-parent) ns=""`,
		}},
		{name: "missing role gives nothing", subject: Subject{Kind: rbacv1.UserKind, Name: "ghost-user"}},
		{name: "user is not a group", subject: Subject{Kind: rbacv1.UserKind, Name: "admins"}},
		{name: "unknown kind", subject: Subject{Kind: "user", Name: "mallory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, grantLines(ix.RulesFor(tt.subject))); diff != "" {
				t.Errorf("RulesFor(%v) (-want +got):\n%s", tt.subject, diff)
			}
		})
	}
}

func TestRulesForUser(t *testing.T) {
	ix := fixture()
	sa := "system:serviceaccount:ns1:deployer"
	tests := []struct {
		name      string
		namespace string
		want      []string
	}{
		{name: "cluster-wide", namespace: "", want: []string{
			`Group:system:authenticated <- ClusterRoleBinding crb-health (ClusterRole health) ns=""`,
		}},
		{name: "one namespace", namespace: "ns1", want: []string{
			`Group:system:authenticated <- ClusterRoleBinding crb-health (ClusterRole health) ns=""`,
			`ServiceAccount:ns1/deployer <- RoleBinding ns1/rb-secrets (Role secret-reader) ns="ns1"`,
		}},
		{name: "any namespace", namespace: AnyNamespace, want: []string{
			`Group:system:authenticated <- ClusterRoleBinding crb-health (ClusterRole health) ns=""`,
			`ServiceAccount:ns1/deployer <- RoleBinding ns1/rb-secrets (Role secret-reader) ns="ns1"`,
			`ServiceAccount:ns1/deployer <- RoleBinding ns2/rb-foreign-sa (Role ns2-only) ns="ns2"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ix.RulesForUser(sa, DefaultGroups(sa), tt.namespace)
			if diff := cmp.Diff(tt.want, grantLines(got)); diff != "" {
				t.Errorf("RulesForUser (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAggregation(t *testing.T) {
	core := l("")
	sel := func(k, v string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	listSvc := resRule(l("list"), core, l("services"))
	getNodes := resRule(l("get"), core, l("nodes"))
	getPV := resRule(l("get"), core, l("persistentvolumes"))
	own := resRule(l("delete"), core, l("secrets"))
	managed := func(cr rbacv1.ClusterRole, manager string) rbacv1.ClusterRole {
		cr.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager:    manager,
			Operation:  metav1.ManagedFieldsOperationApply,
			FieldsType: "FieldsV1",
			FieldsV1:   &metav1.FieldsV1{Raw: []byte(`{"f:rules":{}}`)},
		}}
		return cr
	}
	tests := []struct {
		name   string
		crs    []rbacv1.ClusterRole
		opts   []Option
		role   string
		want   []rbacv1.PolicyRule
		wantOK bool
	}{
		{
			name: "two selectors in selector then name order without duplicates",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("parent", nil, own), sel("a", "1"), metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "b", Operator: metav1.LabelSelectorOpExists}}}),
				clusterRole("z-child", map[string]string{"a": "1"}, listSvc),
				clusterRole("b-child", map[string]string{"b": "x"}, getNodes, listSvc),
				clusterRole("a-child", map[string]string{"a": "1", "b": "y"}, getPV),
				clusterRole("other", map[string]string{"c": "1"}, own),
			},
			role: "parent", want: []rbacv1.PolicyRule{getPV, listSvc, getNodes}, wantOK: true,
		},
		{
			name: "role matching its own selector is skipped",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("self", map[string]string{"a": "1"}, own), sel("a", "1")),
				clusterRole("child", map[string]string{"a": "1"}, listSvc),
			},
			role: "self", want: []rbacv1.PolicyRule{listSvc}, wantOK: true,
		},
		{
			name: "chain of aggregated roles converges",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("a-top", nil), sel("level", "mid")),
				aggregated(clusterRole("b-mid", map[string]string{"level": "mid"}, own), sel("level", "leaf")),
				clusterRole("c-leaf", map[string]string{"level": "leaf"}, getNodes),
			},
			role: "a-top", want: []rbacv1.PolicyRule{getNodes}, wantOK: true,
		},
		{
			name: "invalid selector keeps the stored rules",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("parent", nil, own), sel("a", "1"), metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "b", Operator: "Sometimes"}}}),
				clusterRole("child", map[string]string{"a": "1"}, listSvc),
			},
			role: "parent", want: []rbacv1.PolicyRule{own}, wantOK: true,
		},
		{
			name: "empty selector selects every other role",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("all", nil, own), metav1.LabelSelector{}),
				clusterRole("y", nil, listSvc),
				clusterRole("x", map[string]string{"k": "v"}, getNodes),
			},
			role: "all", want: []rbacv1.PolicyRule{getNodes, listSvc}, wantOK: true,
		},
		{
			name: "nothing selected keeps rules the controller does not manage",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("parent", nil, own), sel("a", "1")),
			},
			role: "parent", want: []rbacv1.PolicyRule{own}, wantOK: true,
		},
		{
			name: "nothing selected clears rules the controller manages",
			crs: []rbacv1.ClusterRole{
				managed(aggregated(clusterRole("parent", nil, own), sel("a", "1")), "clusterrole-aggregation-controller"),
			},
			role: "parent", want: []rbacv1.PolicyRule{}, wantOK: true,
		},
		{
			name: "nothing selected keeps rules another manager applied",
			crs: []rbacv1.ClusterRole{
				managed(aggregated(clusterRole("parent", nil, own), sel("a", "1")), "kubectl"),
			},
			role: "parent", want: []rbacv1.PolicyRule{own}, wantOK: true,
		},
		{
			name: "stored rules only",
			crs: []rbacv1.ClusterRole{
				aggregated(clusterRole("parent", nil, own), sel("a", "1")),
				clusterRole("child", map[string]string{"a": "1"}, listSvc),
			},
			opts: []Option{StoredRulesOnly()},
			role: "parent", want: []rbacv1.PolicyRule{own}, wantOK: true,
		},
		{
			name: "unknown role",
			role: "nope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ix := New(tt.crs, nil, nil, nil, tt.opts...)
			got, ok := ix.ClusterRoleRules(tt.role)
			if ok != tt.wantOK {
				t.Fatalf("ClusterRoleRules(%q) ok = %v, want %v", tt.role, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoleRules(t *testing.T) {
	ix := fixture()
	got, ok := ix.RoleRules("ns1", "secret-reader")
	if !ok {
		t.Fatal("RoleRules(ns1, secret-reader) not found")
	}
	if diff := cmp.Diff([]rbacv1.PolicyRule{resRule(l("get"), l(""), l("secrets"))}, got); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if _, ok := ix.RoleRules("ns2", "secret-reader"); ok {
		t.Error("RoleRules(ns2, secret-reader) found a role of another namespace")
	}
}

func TestCovers(t *testing.T) {
	core := l("")
	tests := []struct {
		name      string
		allowed   []rbacv1.PolicyRule
		rule      rbacv1.PolicyRule
		want      bool
		uncovered []rbacv1.PolicyRule
	}{
		{name: "identical", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods"))}, rule: resRule(l("get"), core, l("pods")), want: true},
		{name: "split across rules", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods")), resRule(l("list"), core, l("pods"))},
			rule: resRule(l("get", "list"), core, l("pods")), want: true},
		{name: "one verb missing", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods"))},
			rule: resRule(l("get", "list"), core, l("pods")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("list"), core, l("pods"))}},
		{name: "star verb covers all verbs", allowed: []rbacv1.PolicyRule{resRule(l("*"), core, l("pods"))}, rule: resRule(l("get", "delete"), core, l("pods")), want: true},
		{name: "star verb only covered by star", allowed: []rbacv1.PolicyRule{resRule(l("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"), core, l("pods"))},
			rule: resRule(l("*"), core, l("pods")), want: false, uncovered: []rbacv1.PolicyRule{resRule(l("*"), core, l("pods"))}},
		{name: "star group only covered by star", allowed: []rbacv1.PolicyRule{resRule(l("get"), l("", "apps"), l("pods"))}, rule: resRule(l("get"), l("*"), l("pods")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), l("*"), l("pods"))}},
		{name: "star resource only covered by star", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods", "*/log"))}, rule: resRule(l("get"), core, l("*")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), core, l("*"))}},
		{name: "star resource covers subresources", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("*"))}, rule: resRule(l("get"), core, l("pods/log", "*/scale")), want: true},
		{name: "star-slash-sub covers that subresource", allowed: []rbacv1.PolicyRule{resRule(l("get"), l("*"), l("*/scale"))}, rule: resRule(l("get"), l("apps"), l("deployments/scale", "*/scale")), want: true},
		{name: "star-slash-sub does not cover the resource", allowed: []rbacv1.PolicyRule{resRule(l("get"), l("*"), l("*/scale"))}, rule: resRule(l("get"), l("apps"), l("deployments")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), l("apps"), l("deployments"))}},
		{name: "resource does not cover its subresource", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods"))}, rule: resRule(l("get"), core, l("pods/log")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods/log"))}},
		{name: "listed names covered by unnamed rule", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("configmaps"))}, rule: resRule(l("get"), core, l("configmaps"), "a", "b"), want: true},
		{name: "listed names covered by listing them", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("configmaps"), "a"), resRule(l("get"), core, l("configmaps"), "b", "c")},
			rule: resRule(l("get"), core, l("configmaps"), "a", "b"), want: true},
		{name: "unnamed rule not covered by named rules", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("configmaps"), "a")}, rule: resRule(l("get"), core, l("configmaps")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), core, l("configmaps"))}},
		{name: "unlisted name", allowed: []rbacv1.PolicyRule{resRule(l("get"), core, l("configmaps"), "a")}, rule: resRule(l("get"), core, l("configmaps"), "a", "z"), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), core, l("configmaps"), "z")}},
		{name: "exact URL", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz", "/livez")}, rule: urlRule(l("get"), "/livez"), want: true},
		{name: "URL under a prefix", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz/*")}, rule: urlRule(l("get"), "/healthz/etcd"), want: true},
		{name: "prefix covered by equal prefix", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz/*")}, rule: urlRule(l("get"), "/healthz/*"), want: true},
		{name: "prefix covered by broader prefix", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/health*")}, rule: urlRule(l("get"), "/healthz/*"), want: true},
		{name: "prefix not covered by narrower prefix", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz/e*")}, rule: urlRule(l("get"), "/healthz/*"), want: false,
			uncovered: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz/*")}},
		{name: "prefix not covered by exact URLs", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz", "/healthz/etcd")}, rule: urlRule(l("get"), "/healthz*"), want: false,
			uncovered: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz*")}},
		{name: "star URL covers all", allowed: []rbacv1.PolicyRule{urlRule(l("*"), "*")}, rule: urlRule(l("get", "post"), "/a", "/b/*"), want: true},
		{name: "star URL only covered by star", allowed: []rbacv1.PolicyRule{urlRule(l("get"), "/*")}, rule: urlRule(l("get"), "*"), want: false,
			uncovered: []rbacv1.PolicyRule{urlRule(l("get"), "*")}},
		{name: "resource rule does not cover URL", allowed: []rbacv1.PolicyRule{resRule(l("*"), l("*"), l("*"))}, rule: urlRule(l("get"), "/healthz"), want: false,
			uncovered: []rbacv1.PolicyRule{urlRule(l("get"), "/healthz")}},
		{name: "URL rule does not cover resources", allowed: []rbacv1.PolicyRule{urlRule(l("*"), "*")}, rule: resRule(l("get"), core, l("pods")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods"))}},
		{name: "rule without verbs allows nothing", allowed: nil, rule: resRule(nil, core, l("pods")), want: true},
		{name: "nothing allowed", allowed: nil, rule: resRule(l("get"), core, l("pods")), want: false,
			uncovered: []rbacv1.PolicyRule{resRule(l("get"), core, l("pods"))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Covers(tt.allowed, tt.rule); got != tt.want {
				t.Errorf("Covers = %v, want %v", got, tt.want)
			}
			if diff := cmp.Diff(tt.uncovered, Uncovered(tt.allowed, tt.rule)); diff != "" {
				t.Errorf("Uncovered (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRuleAllows(t *testing.T) {
	tests := []struct {
		name string
		rule rbacv1.PolicyRule
		req  Request
		want bool
	}{
		{name: "listed empty name matches a request without name", rule: resRule(l("list"), l(""), l("pods"), ""), req: Request{Verb: "list", Resource: "pods"}, want: true},
		{name: "multiple trailing stars strip to one prefix", rule: urlRule(l("get"), "/api**"), req: Request{Verb: "get", Path: "/apis"}, want: true},
		{name: "star inside URL is literal", rule: urlRule(l("get"), "/a*/b"), req: Request{Verb: "get", Path: "/ax/b"}, want: false},
		{name: "star-slash-star only matches subresource star", rule: resRule(l("get"), l(""), l("*/*")), req: Request{Verb: "get", Resource: "pods", Subresource: "log"}, want: false},
		{name: "URL rule does not match resource request", rule: urlRule(l("*"), "*"), req: Request{Verb: "get", Resource: "pods"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RuleAllows(tt.rule, tt.req); got != tt.want {
				t.Errorf("RuleAllows = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDefaultGroups(t *testing.T) {
	tests := []struct {
		name string
		user string
		want []string
	}{
		{name: "anonymous", user: "system:anonymous", want: l("system:unauthenticated")},
		{name: "service account", user: "system:serviceaccount:kube-system:default", want: l("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")},
		{name: "malformed service account", user: "system:serviceaccount:a:b:c", want: l("system:authenticated")},
		{name: "service account with invalid namespace", user: "system:serviceaccount:Bad_NS:x", want: l("system:authenticated")},
		{name: "user", user: "alice", want: l("system:authenticated")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DefaultGroups(tt.user)); diff != "" {
				t.Errorf("DefaultGroups(%q) (-want +got):\n%s", tt.user, diff)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "privileged reason", got: Reason{Decision: AllowedByPrivilegedGroup}.String(), want: `allowed: member of the privileged group "system:masters"`},
		{name: "no opinion reason", got: Reason{}.String(), want: "RBAC: no rule allows the request"},
		{name: "decision", got: AllowedByRBAC.String(), want: "AllowedByRBAC"},
		{name: "resource request", got: Request{Verb: "get", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Name: "web", Namespace: "ns1"}.String(), want: "get deployments/scale.apps web in ns1"},
		{name: "non-resource request", got: Request{Verb: "get", Path: "/healthz"}.String(), want: "get /healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}
