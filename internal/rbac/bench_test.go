package rbac

import (
	"fmt"
	"math/rand/v2"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// syntheticCluster builds a large, deterministic cluster: 3,000
// ClusterRoles (30 of them aggregating), 5,000 Roles and 20,000
// RoleBindings over 500 namespaces, and 500 ClusterRoleBindings.
func syntheticCluster() ([]rbacv1.ClusterRole, []rbacv1.ClusterRoleBinding, []rbacv1.Role, []rbacv1.RoleBinding) {
	rng := rand.New(rand.NewPCG(1, 2))
	verbs := []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}
	groups := []string{"", "apps", "batch", "networking.k8s.io"}
	for i := 0; i < 20; i++ {
		groups = append(groups, fmt.Sprintf("g%d.example.com", i))
	}
	resources := make([]string, 0, 300)
	for i := 0; i < 300; i++ {
		resources = append(resources, fmt.Sprintf("res%d", i))
	}
	resources = append(resources, "pods", "pods/log", "secrets", "deployments", "deployments/scale", "*/scale", "configmaps")
	some := func(n int, from []string) []string {
		out := make([]string, 1+rng.IntN(n))
		for i := range out {
			out[i] = from[rng.IntN(len(from))]
		}
		return out
	}
	rule := func() rbacv1.PolicyRule {
		if rng.IntN(20) == 0 {
			return rbacv1.PolicyRule{Verbs: []string{"get"}, NonResourceURLs: some(2, []string{"/healthz", "/metrics", "/logs/*", "/version"})}
		}
		r := rbacv1.PolicyRule{Verbs: some(3, verbs), APIGroups: some(1, groups), Resources: some(4, resources)}
		if rng.IntN(10) == 0 {
			r.ResourceNames = some(2, []string{"a", "b", "c"})
		}
		return r
	}
	rules := func() []rbacv1.PolicyRule {
		out := make([]rbacv1.PolicyRule, 3+rng.IntN(6))
		for i := range out {
			out[i] = rule()
		}
		return out
	}
	subjects := func(ns string) []rbacv1.Subject {
		out := make([]rbacv1.Subject, 1+rng.IntN(3))
		for i := range out {
			switch rng.IntN(3) {
			case 0:
				out[i] = rbacv1.Subject{Kind: rbacv1.UserKind, Name: fmt.Sprintf("user%d", rng.IntN(2000))}
			case 1:
				out[i] = rbacv1.Subject{Kind: rbacv1.GroupKind, Name: fmt.Sprintf("group%d", rng.IntN(200))}
			default:
				out[i] = rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: fmt.Sprintf("sa%d", rng.IntN(20))}
			}
		}
		return out
	}

	crs := make([]rbacv1.ClusterRole, 3000)
	for i := range crs {
		crs[i] = rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cr%d", i)}, Rules: rules()}
		switch {
		case i < 30:
			crs[i].AggregationRule = &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
				{MatchLabels: map[string]string{"aggregate-to": fmt.Sprint(i % 10)}},
			}}
		case rng.IntN(10) == 0:
			crs[i].Labels = map[string]string{"aggregate-to": fmt.Sprint(rng.IntN(10))}
		}
	}
	const namespaces = 500
	roles := make([]rbacv1.Role, 5000)
	for i := range roles {
		roles[i] = rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", i%namespaces), Name: fmt.Sprintf("role%d", i/namespaces)}, Rules: rules()}
	}
	crbs := make([]rbacv1.ClusterRoleBinding, 500)
	for i := range crbs {
		crbs[i] = rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("crb%d", i)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: KindClusterRole, Name: fmt.Sprintf("cr%d", rng.IntN(3100))},
			Subjects:   subjects(fmt.Sprintf("ns%d", rng.IntN(namespaces))),
		}
	}
	rbs := make([]rbacv1.RoleBinding, 20000)
	for i := range rbs {
		ns := fmt.Sprintf("ns%d", rng.IntN(namespaces))
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: KindClusterRole, Name: fmt.Sprintf("cr%d", rng.IntN(3000))}
		if rng.IntN(10) < 3 {
			ref = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: KindRole, Name: fmt.Sprintf("role%d", rng.IntN(11))}
		}
		rbs[i] = rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("rb%d", i)}, RoleRef: ref, Subjects: subjects(ns)}
	}
	return crs, crbs, roles, rbs
}

func benchQueries() []Request {
	return []Request{
		{Verb: "get", Resource: "secrets", Namespace: AnyNamespace},
		{Verb: "list", Resource: "secrets", Namespace: AnyNamespace},
		{Verb: "create", Resource: "pods", Namespace: AnyNamespace},
		{Verb: "get", Resource: "pods", Subresource: "log", Namespace: AnyNamespace},
		{Verb: "update", APIGroup: "apps", Resource: "deployments", Subresource: "scale", Namespace: AnyNamespace},
		{Verb: "get", Resource: "configmaps", Name: "b", Namespace: AnyNamespace},
		{Verb: "delete", APIGroup: "g3.example.com", Resource: "res17", Namespace: AnyNamespace},
		{Verb: "watch", APIGroup: "batch", Resource: "res200", Namespace: AnyNamespace},
		{Verb: "escalate", APIGroup: "rbac.authorization.k8s.io", Resource: "clusterroles", Namespace: AnyNamespace},
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: AnyNamespace},
		{Verb: "get", Resource: "secrets", Namespace: "ns7"},
		{Verb: "create", Resource: "pods", Namespace: "ns42"},
		{Verb: "list", Resource: "secrets"},
		{Verb: "get", Resource: "nodes"},
		{Verb: "impersonate", Resource: "users", Namespace: AnyNamespace},
		{Verb: "approve", APIGroup: "certificates.k8s.io", Resource: "signers", Namespace: AnyNamespace},
		{Verb: "create", APIGroup: "certificates.k8s.io", Resource: "certificatesigningrequests", Namespace: AnyNamespace},
		{Verb: "get", Path: "/logs/kube-apiserver.log"},
		{Verb: "get", Path: "/metrics"},
		{Verb: "patch", APIGroup: "networking.k8s.io", Resource: "res5", Namespace: AnyNamespace},
	}
}

func BenchmarkWhoCan(b *testing.B) {
	ix := New(syntheticCluster())
	queries := benchQueries()
	grants := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		grants += len(ix.WhoCan(queries[i%len(queries)]))
	}
	b.ReportMetric(float64(grants)/float64(b.N), "grants/op")
}

func BenchmarkNew(b *testing.B) {
	crs, crbs, roles, rbs := syntheticCluster()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		New(crs, crbs, roles, rbs)
	}
}

func BenchmarkAllowed(b *testing.B) {
	ix := New(syntheticCluster())
	queries := benchQueries()
	users := make([]string, 2000)
	for i := range users {
		users[i] = fmt.Sprintf("user%d", i)
	}
	groups := []string{"group1", "system:authenticated"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := queries[i%len(queries)]
		if q.Namespace == AnyNamespace {
			q.Namespace = "ns3"
		}
		ix.Allowed(users[i%len(users)], groups, q)
	}
}
