package rbac

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// byteSource turns fuzz input into choices; it yields zeros once exhausted.
type byteSource struct {
	data []byte
	i    int
}

func (s *byteSource) n(k int) int {
	if s.i >= len(s.data) {
		return 0
	}
	v := int(s.data[s.i])
	s.i++
	return v % k
}

func (s *byteSource) pick(xs ...string) string { return xs[s.n(len(xs))] }

func (s *byteSource) list(max int, xs ...string) []string {
	k := s.n(max + 1)
	if k == 0 {
		return nil
	}
	out := make([]string, k)
	for i := range out {
		out[i] = s.pick(xs...)
	}
	return out
}

func (s *byteSource) rule() rbacv1.PolicyRule {
	if s.n(4) == 0 {
		return rbacv1.PolicyRule{
			Verbs:           s.list(2, "get", "post", "*", ""),
			NonResourceURLs: s.list(2, "/healthz", "/healthz/*", "/api*", "*", "/api/v1", "/a**", "", "/*"),
		}
	}
	return rbacv1.PolicyRule{
		Verbs:         s.list(2, "get", "list", "update", "*", ""),
		APIGroups:     s.list(2, "", "apps", "*"),
		Resources:     s.list(2, "pods", "pods/log", "*/log", "*", "deployments/scale", "*/scale", "secrets", "*/*", ""),
		ResourceNames: s.list(1, "a", "b", ""),
	}
}

func (s *byteSource) subjects() []rbacv1.Subject {
	out := make([]rbacv1.Subject, s.n(3))
	for i := range out {
		k := s.pick(rbacv1.UserKind, rbacv1.GroupKind, rbacv1.ServiceAccountKind, "user")
		switch k {
		case rbacv1.GroupKind:
			out[i] = rbacv1.Subject{Kind: k, Name: s.pick("devs", "system:authenticated", "system:serviceaccounts:ns1", "alice", "system:masters")}
		case rbacv1.ServiceAccountKind:
			out[i] = rbacv1.Subject{Kind: k, Name: s.pick("sa1", "sa2"), Namespace: s.pick("", "ns1", "ns2")}
		default:
			out[i] = rbacv1.Subject{Kind: k, Name: s.pick("alice", "bob", "system:serviceaccount:ns1:sa1", "")}
		}
	}
	return out
}

type fuzzWorld struct {
	crs   []rbacv1.ClusterRole
	crbs  []rbacv1.ClusterRoleBinding
	roles []rbacv1.Role
	rbs   []rbacv1.RoleBinding
}

func (s *byteSource) world() fuzzWorld {
	var w fuzzWorld
	for i := s.n(6); i >= 0; i-- {
		cr := rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cr%d", s.n(5))}}
		if s.n(2) == 0 {
			cr.Labels = map[string]string{s.pick("x", "y"): s.pick("1", "2")}
		}
		for j := s.n(3); j > 0; j-- {
			cr.Rules = append(cr.Rules, s.rule())
		}
		if s.n(4) == 0 {
			cr.AggregationRule = &rbacv1.AggregationRule{}
			for j := s.n(3); j > 0; j-- {
				var sel metav1.LabelSelector
				switch s.n(4) {
				case 0:
					sel.MatchLabels = map[string]string{s.pick("x", "y"): s.pick("1", "2")}
				case 1:
					sel.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: s.pick("x", "y"), Operator: metav1.LabelSelectorOpIn, Values: []string{"1"}}}
				case 2:
					sel.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Bogus"}}
				}
				cr.AggregationRule.ClusterRoleSelectors = append(cr.AggregationRule.ClusterRoleSelectors, sel)
			}
		}
		w.crs = append(w.crs, cr)
	}
	for i := s.n(4); i > 0; i-- {
		r := rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: s.pick("ns1", "ns2", ""), Name: fmt.Sprintf("r%d", s.n(3))}}
		for j := s.n(3); j > 0; j-- {
			r.Rules = append(r.Rules, s.rule())
		}
		w.roles = append(w.roles, r)
	}
	roleRef := func() rbacv1.RoleRef {
		switch s.n(4) {
		case 0:
			return rbacv1.RoleRef{Kind: KindRole, Name: fmt.Sprintf("r%d", s.n(4))}
		case 1:
			return rbacv1.RoleRef{Kind: "Bogus", Name: "cr0"}
		}
		return rbacv1.RoleRef{Kind: KindClusterRole, Name: fmt.Sprintf("cr%d", s.n(6))}
	}
	for i := s.n(4); i > 0; i-- {
		w.crbs = append(w.crbs, rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("crb%d", i)}, RoleRef: roleRef(), Subjects: s.subjects()})
	}
	for i := s.n(6); i > 0; i-- {
		w.rbs = append(w.rbs, rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: s.pick("ns1", "ns2", ""), Name: fmt.Sprintf("rb%d", i)}, RoleRef: roleRef(), Subjects: s.subjects()})
	}
	return w
}

func (s *byteSource) request() Request {
	if s.n(4) == 0 {
		return Request{Verb: s.pick("get", "post", "*"), Path: s.pick("/healthz", "/healthz/ready", "/api", "/api/v1", "/apis", "/a", "*", "/"), Namespace: s.pick("", "ns1", AnyNamespace)}
	}
	return Request{
		Verb:        s.pick("get", "list", "update", "*"),
		APIGroup:    s.pick("", "apps", "*"),
		Resource:    s.pick("pods", "deployments", "secrets", "*", "pods/log"),
		Subresource: s.pick("", "", "log", "scale", "*"),
		Name:        s.pick("", "a", "b", "c"),
		Namespace:   s.pick("", "ns1", "ns2", "ns3", AnyNamespace),
	}
}

var fuzzUsers = []struct {
	name   string
	groups []string
}{
	{"alice", []string{"system:authenticated"}},
	{"bob", []string{"devs", "system:authenticated"}},
	{"", nil},
	{"system:serviceaccount:ns1:sa1", DefaultGroups("system:serviceaccount:ns1:sa1")},
	{"system:serviceaccount:ns2:sa1", DefaultGroups("system:serviceaccount:ns2:sa1")},
	{"system:serviceaccount:ns1:sa2", nil},
	{"system:anonymous", DefaultGroups("system:anonymous")},
	{"root", []string{"system:masters"}},
}

// refAllowed is a direct, unindexed transcription of the authorizer's loop
// over the raw objects, used as an oracle. It takes each ClusterRole's
// effective rules from the index so that aggregation is checked elsewhere.
func refAllowed(w fuzzWorld, ix *Index, userName string, groups []string, r Request) bool {
	if slices.Contains(groups, "system:masters") {
		return true
	}
	ns := r.Namespace
	if r.Path != "" {
		ns = ""
	}
	rulesOf := func(ref rbacv1.RoleRef, bindingNS string) []rbacv1.PolicyRule {
		switch ref.Kind {
		case "ClusterRole":
			rules, _ := ix.ClusterRoleRules(ref.Name)
			return rules
		case "Role":
			if bindingNS == "" {
				return nil
			}
			for _, role := range w.roles {
				if role.Namespace == bindingNS && role.Name == ref.Name {
					return role.Rules
				}
			}
		}
		return nil
	}
	applies := func(subjects []rbacv1.Subject, bindingNS string) bool {
		for _, s := range subjects {
			switch s.Kind {
			case "User":
				if s.Name == userName {
					return true
				}
			case "Group":
				if slices.Contains(groups, s.Name) {
					return true
				}
			case "ServiceAccount":
				sns := s.Namespace
				if sns == "" {
					sns = bindingNS
				}
				if sns != "" && userName == "system:serviceaccount:"+sns+":"+s.Name {
					return true
				}
			}
		}
		return false
	}
	allows := func(rule rbacv1.PolicyRule) bool {
		if !slices.Contains(rule.Verbs, "*") && !slices.Contains(rule.Verbs, r.Verb) {
			return false
		}
		if r.Path != "" {
			for _, u := range rule.NonResourceURLs {
				if u == "*" || u == r.Path || (strings.HasSuffix(u, "*") && strings.HasPrefix(r.Path, strings.TrimRight(u, "*"))) {
					return true
				}
			}
			return false
		}
		if !slices.Contains(rule.APIGroups, "*") && !slices.Contains(rule.APIGroups, r.APIGroup) {
			return false
		}
		combined := r.Resource
		if r.Subresource != "" {
			combined += "/" + r.Subresource
		}
		if !slices.Contains(rule.Resources, "*") && !slices.Contains(rule.Resources, combined) &&
			(r.Subresource == "" || !slices.Contains(rule.Resources, "*/"+r.Subresource)) {
			return false
		}
		return len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, r.Name)
	}
	check := func(subjects []rbacv1.Subject, ref rbacv1.RoleRef, bindingNS string) bool {
		return applies(subjects, bindingNS) && slices.ContainsFunc(rulesOf(ref, bindingNS), allows)
	}
	for _, b := range w.crbs {
		if check(b.Subjects, b.RoleRef, "") {
			return true
		}
	}
	if ns == "" {
		return false
	}
	for _, b := range w.rbs {
		if b.Namespace == ns && check(b.Subjects, b.RoleRef, ns) {
			return true
		}
	}
	return false
}

// userFor returns a user that a grant's subject matches.
func userFor(s Subject) (string, []string) {
	switch s.Kind {
	case rbacv1.UserKind:
		return s.Name, nil
	case rbacv1.ServiceAccountKind:
		return "system:serviceaccount:" + s.Namespace + ":" + s.Name, nil
	}
	return "fuzz:nobody", []string{s.Name}
}

func subjectMatchesUser(s Subject, userName string, groups []string) bool {
	switch s.Kind {
	case rbacv1.GroupKind:
		return slices.Contains(groups, s.Name)
	case rbacv1.UserKind:
		return s.Name == userName
	case rbacv1.ServiceAccountKind:
		return userName == "system:serviceaccount:"+s.Namespace+":"+s.Name
	}
	return false
}

func FuzzAllowed(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x05\x01\x01\x00\x02\x03\x01\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"))
	f.Add([]byte("rbac fuzz seed with enough bytes to build a few roles, bindings and requests; rbac fuzz seed"))
	f.Add([]byte{6, 0, 0, 1, 1, 2, 0, 3, 1, 1, 0, 2, 2, 1, 3, 3, 0, 0, 1, 2, 3, 3, 2, 2, 1, 0, 1, 2, 3, 0, 0, 5, 5, 5, 1, 2, 3, 1, 0, 2, 1, 3, 0, 3, 3, 1, 2, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{data: data}
		w := src.world()
		ix := New(w.crs, w.crbs, w.roles, w.rbs)
		for q := 0; q < 12; q++ {
			r := src.request()
			grants := ix.WhoCan(r)
			for _, g := range grants {
				if r.Namespace != AnyNamespace && g.Namespace != "" && g.Namespace != r.Namespace {
					t.Fatalf("WhoCan(%v) returned a grant in namespace %q", r, g.Namespace)
				}
				rr := r
				if r.Namespace == AnyNamespace {
					rr.Namespace = g.Namespace
				}
				u, groups := userFor(g.Subject)
				if ok, reason := ix.Allowed(u, groups, rr); !ok {
					t.Fatalf("WhoCan(%v) lists %v via %s, but Allowed(%q, %q, %v) = false (%v)", r, g.Subject, g.Source(), u, groups, rr, reason)
				}
				if !RuleAllows(g.Rule, rr) {
					t.Fatalf("grant rule %v does not allow %v", g.Rule, rr)
				}
			}
			if r.Namespace == AnyNamespace {
				continue
			}
			for _, fu := range fuzzUsers {
				ok, reason := ix.Allowed(fu.name, fu.groups, r)
				if want := refAllowed(w, ix, fu.name, fu.groups, r); ok != want {
					t.Fatalf("Allowed(%q, %q, %v) = %v (%v), reference says %v", fu.name, fu.groups, r, ok, reason, want)
				}
				if reason.Decision != AllowedByRBAC {
					continue
				}
				found := false
				for _, g := range grants {
					if g.Binding == reason.Grant.Binding && subjectMatchesUser(g.Subject, fu.name, fu.groups) {
						found = true
						break
					}
				}
				if !found {
					t.Fatalf("Allowed(%q, %q, %v) via %s, but WhoCan lists no matching subject of that binding", fu.name, fu.groups, r, reason.Grant.Source())
				}
			}
		}
		// Covers is sound on the sampled requests, and reflexive.
		allowed := []rbacv1.PolicyRule{src.rule(), src.rule()}
		probe := src.rule()
		if !Covers([]rbacv1.PolicyRule{probe}, probe) {
			t.Fatalf("Covers is not reflexive for %v", probe)
		}
		if Covers(allowed, probe) {
			for q := 0; q < 12; q++ {
				r := src.request()
				if r.Resource == "pods/log" {
					continue // not a request the apiserver's parser produces
				}
				if RuleAllows(probe, r) && !slices.ContainsFunc(allowed, func(a rbacv1.PolicyRule) bool { return RuleAllows(a, r) }) {
					t.Fatalf("Covers(%v, %v) but %v is allowed only by the latter", allowed, probe, r)
				}
			}
		}
	})
}
