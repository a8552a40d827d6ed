package rbac_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubepki/kubepki/internal/rbac"
	"github.com/kubepki/kubepki/internal/testbed"
)

// The oracle: the index must answer every question exactly as the real
// kube-apiserver's authorizer does. The test loads a few hundred random
// roles and bindings (wildcards, resourceNames, subresources, non-resource
// URLs, aggregation, missing roles, service-account subjects without a
// namespace) into a real control plane with the real clusterrole
// aggregation controller, reads them back, and asks SubjectAccessReview and
// the index the same thousands of questions.

var (
	oracleNamespaces = []string{"ns-a", "ns-b", "ns-c", "kube-system"}
	oracleUsers      = []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	oracleGroups     = []string{"devs", "ops", "auditors", "system:authenticated", "system:serviceaccounts"}
	oracleVerbs      = []string{"get", "list", "watch", "create", "update", "delete", "impersonate", "approve", "sign", "bind", "escalate"}
	oracleGroupsAPI  = []string{"", "apps", "certificates.k8s.io", "rbac.authorization.k8s.io", "authentication.k8s.io"}
	oracleResources  = []string{"pods", "pods/log", "pods/exec", "secrets", "configmaps", "deployments", "deployments/scale",
		"certificatesigningrequests", "certificatesigningrequests/approval", "certificatesigningrequests/status", "signers",
		"serviceaccounts", "serviceaccounts/token", "users", "groups", "clusterroles", "roles", "userextras/scopes"}
	oracleNames = []string{"a", "b", "cluster-info", "kubernetes.io/kube-apiserver-client", "kubernetes.io/*", "system:masters"}
	oracleURLs  = []string{"/metrics", "/healthz", "/logs/", "/logs/kube.log", "/api", "/apis/apps", "/version"}
	ruleURLs    = []string{"/metrics", "/healthz", "/logs/*", "/logs/", "/apis/*", "*"}
)

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

func some(r *rand.Rand, list []string, star float64) []string {
	if r.Float64() < star {
		return []string{"*"}
	}
	n := 1 + r.IntN(3)
	seen := map[string]bool{}
	var out []string
	for range n {
		v := pick(r, list)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func randomRule(r *rand.Rand, clusterScoped bool) rbacv1.PolicyRule {
	if clusterScoped && r.Float64() < 0.15 {
		return rbacv1.PolicyRule{Verbs: some(r, []string{"get", "post", "put"}, 0.2), NonResourceURLs: some(r, ruleURLs, 0)}
	}
	res := some(r, oracleResources, 0.1)
	if r.Float64() < 0.08 {
		res = []string{"*/scale"}
	}
	rule := rbacv1.PolicyRule{Verbs: some(r, oracleVerbs, 0.1), APIGroups: some(r, oracleGroupsAPI, 0.1), Resources: res}
	if r.Float64() < 0.25 {
		rule.ResourceNames = some(r, oracleNames, 0)
	}
	return rule
}

func randomRules(r *rand.Rand, clusterScoped bool) []rbacv1.PolicyRule {
	n := 1 + r.IntN(3)
	out := make([]rbacv1.PolicyRule, n)
	for i := range out {
		out[i] = randomRule(r, clusterScoped)
	}
	return out
}

func randomSubjects(r *rand.Rand, bindingNS string) []rbacv1.Subject {
	n := 1 + r.IntN(3)
	var out []rbacv1.Subject
	for range n {
		switch r.IntN(3) {
		case 0:
			out = append(out, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: pick(r, oracleUsers)})
		case 1:
			out = append(out, rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: pick(r, oracleGroups)})
		default:
			ns := pick(r, oracleNamespaces)
			if bindingNS != "" && r.Float64() < 0.3 {
				ns = "" // the binding's own namespace
			}
			out = append(out, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: fmt.Sprintf("sa%d", r.IntN(2)), Namespace: ns})
		}
	}
	return out
}

// seed loads random RBAC into the cluster.
func seed(t *testing.T, cs kubernetes.Interface, r *rand.Rand) (bindings int) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range oracleNamespaces[:3] {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var clusterRoles []string
	for i := range 40 {
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("oracle-cr-%d", i)}, Rules: randomRules(r, true)}
		if r.Float64() < 0.3 {
			cr.Labels = map[string]string{"oracle/aggregate-" + pick(r, []string{"x", "y"}): "true"}
		}
		clusterRoles = append(clusterRoles, cr.Name)
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Aggregated roles, one with two selectors; plus the built-in admin,
	// edit and view, which aggregate through the real controller too.
	for i, sel := range [][]string{{"x"}, {"x", "y"}} {
		ar := &rbacv1.AggregationRule{}
		for _, k := range sel {
			ar.ClusterRoleSelectors = append(ar.ClusterRoleSelectors, metav1.LabelSelector{MatchLabels: map[string]string{"oracle/aggregate-" + k: "true"}})
		}
		cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("oracle-agg-%d", i)}, AggregationRule: ar}
		clusterRoles = append(clusterRoles, cr.Name)
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clusterRoles = append(clusterRoles, "admin", "edit", "view", "oracle-missing")
	roles := map[string][]string{}
	for _, ns := range oracleNamespaces {
		for i := range 10 {
			name := fmt.Sprintf("oracle-role-%d", i)
			if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: randomRules(r, false)}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			roles[ns] = append(roles[ns], name)
		}
		roles[ns] = append(roles[ns], "oracle-missing-role")
	}
	for i := range 80 {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("oracle-crb-%d", i)},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: pick(r, clusterRoles)},
			Subjects:   randomSubjects(r, ""),
		}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		bindings++
	}
	for i := range 220 {
		ns := pick(r, oracleNamespaces)
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: pick(r, roles[ns])}
		if r.Float64() < 0.4 {
			ref = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: pick(r, clusterRoles)}
		}
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("oracle-rb-%d", i)}, RoleRef: ref, Subjects: randomSubjects(r, ns)}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		bindings++
	}
	return bindings
}

type question struct {
	user   string
	groups []string
	req    rbac.Request
}

func randomQuestion(r *rand.Rand) question {
	var q question
	switch r.IntN(4) {
	case 0, 1:
		q.user = pick(r, oracleUsers)
		q.groups = []string{"system:authenticated"}
		if r.Float64() < 0.5 {
			q.groups = append(q.groups, pick(r, oracleGroups[:3]))
		}
	case 2:
		q.user = fmt.Sprintf("system:serviceaccount:%s:sa%d", pick(r, oracleNamespaces), r.IntN(2))
		q.groups = rbac.DefaultGroups(q.user)
	default:
		q.user = "nobody-" + pick(r, oracleGroups[:3])
		q.groups = []string{pick(r, oracleGroups[:3]), "system:authenticated"}
	}
	if r.Float64() < 0.1 {
		q.req = rbac.Request{Verb: pick(r, []string{"get", "post"}), Path: pick(r, oracleURLs)}
		return q
	}
	res := pick(r, oracleResources)
	q.req = rbac.Request{Verb: pick(r, oracleVerbs), APIGroup: pick(r, oracleGroupsAPI)}
	q.req.Resource, q.req.Subresource, _ = cut(res)
	if r.Float64() < 0.4 {
		q.req.Name = pick(r, oracleNames)
	}
	if r.Float64() < 0.75 {
		q.req.Namespace = pick(r, oracleNamespaces)
	}
	return q
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func sar(q question) *authzv1.SubjectAccessReview {
	s := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: q.user, Groups: q.groups}}
	if q.req.Path != "" {
		s.Spec.NonResourceAttributes = &authzv1.NonResourceAttributes{Path: q.req.Path, Verb: q.req.Verb}
		return s
	}
	s.Spec.ResourceAttributes = &authzv1.ResourceAttributes{
		Namespace: q.req.Namespace, Verb: q.req.Verb, Group: q.req.APIGroup,
		Resource: q.req.Resource, Subresource: q.req.Subresource, Name: q.req.Name,
	}
	return s
}

func TestIndexAgreesWithSubjectAccessReview(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real control plane")
	}
	c := testbed.StartCluster(t, testbed.WithControllerManager())
	ctx := context.Background()
	seedValue := uint64(time.Now().UnixNano())
	t.Logf("seed %d (set KUBEPKI_ORACLE_SEED to replay)", seedValue)
	if s := envSeed(); s != 0 {
		seedValue = s
	}
	r := rand.New(rand.NewPCG(seedValue, 0x6b756265706b69))
	bindings := seed(t, c.Admin, r)

	// Wait for the aggregation controller to converge on the oracle's
	// aggregated roles: their rules stop changing.
	read := func() *rbac.Index {
		crs, err := c.Admin.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		crbs, err := c.Admin.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		roles, err := c.Admin.RbacV1().Roles("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rbs, err := c.Admin.RbacV1().RoleBindings("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Stored rules only: the converged state is what the apiserver
		// sees; a second index computes aggregation itself, and both must
		// agree with the apiserver once the controller has run.
		converged := rbac.New(crs.Items, crbs.Items, roles.Items, rbs.Items, rbac.StoredRulesOnly())
		computed := rbac.New(crs.Items, crbs.Items, roles.Items, rbs.Items)
		for _, cr := range crs.Items {
			if cr.AggregationRule == nil {
				continue
			}
			stored, _ := converged.ClusterRoleRules(cr.Name)
			want, _ := computed.ClusterRoleRules(cr.Name)
			if len(stored) != len(want) {
				return nil
			}
		}
		return computed
	}
	var ix *rbac.Index
	deadline := time.Now().Add(30 * time.Second)
	for ix = read(); ix == nil; ix = read() {
		if time.Now().After(deadline) {
			t.Fatal("the clusterrole aggregation controller did not converge in 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	const questions = 4000
	qs := make([]question, questions)
	for i := range qs {
		qs[i] = randomQuestion(r)
	}
	answers := make([]bool, questions)
	errs := make([]error, questions)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				resp, err := c.SuperAdmin.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar(qs[i]), metav1.CreateOptions{})
				if err != nil {
					errs[i] = err
					continue
				}
				answers[i] = resp.Status.Allowed
			}
		}()
	}
	for i := range qs {
		next <- i
	}
	close(next)
	wg.Wait()

	allowed, disagree := 0, 0
	for i, q := range qs {
		if errs[i] != nil {
			t.Fatalf("SubjectAccessReview %d: %v", i, errs[i])
		}
		got, why := ix.Allowed(q.user, q.groups, q.req)
		if answers[i] {
			allowed++
		}
		if got != answers[i] {
			disagree++
			if disagree <= 20 {
				t.Errorf("%s %v %s: apiserver says %v, index says %v (%v)", q.user, q.groups, q.req, answers[i], got, why)
			}
		}
	}
	t.Logf("%d bindings, %d questions, %d allowed by the apiserver, %d disagreements", bindings, questions, allowed, disagree)
	if allowed < questions/20 {
		t.Errorf("only %d of %d questions were allowed: the random rules are too sparse to test much", allowed, questions)
	}
}

// envSeed reads KUBEPKI_ORACLE_SEED, 0 when unset.
func envSeed() uint64 {
	v, err := strconv.ParseUint(os.Getenv("KUBEPKI_ORACLE_SEED"), 10, 64)
	if err != nil {
		return 0
	}
	return v
}
