package rbac

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// matcher is a Request prepared for matching against many rules.
type matcher struct {
	resource  bool
	verb      string
	group     string
	combined  string // "resource" or "resource/subresource"
	sub       string
	name      string
	path      string
	namespace string // "" for non-resource requests
}

func newMatcher(r Request) matcher {
	if !r.IsResourceRequest() {
		return matcher{verb: r.Verb, path: r.Path}
	}
	combined := r.Resource
	if r.Subresource != "" {
		combined = r.Resource + "/" + r.Subresource
	}
	return matcher{
		resource:  true,
		verb:      r.Verb,
		group:     r.APIGroup,
		combined:  combined,
		sub:       r.Subresource,
		name:      r.Name,
		namespace: r.Namespace,
	}
}

// RuleAllows reports whether rule allows r, as the RBAC authorizer's
// RuleAllows does. r.Namespace plays no part: where a rule applies is up to
// its binding.
func RuleAllows(rule rbacv1.PolicyRule, r Request) bool {
	m := newMatcher(r)
	return m.allows(&rule)
}

func (m *matcher) allows(rule *rbacv1.PolicyRule) bool {
	if !hasOrStar(rule.Verbs, m.verb) {
		return false
	}
	if !m.resource {
		return urlMatches(rule.NonResourceURLs, m.path)
	}
	return hasOrStar(rule.APIGroups, m.group) &&
		resourceMatches(rule.Resources, m.combined, m.sub) &&
		nameMatches(rule.ResourceNames, m.name)
}

// hasOrStar reports whether list holds v or "*" (rbacv1.VerbAll and
// rbacv1.APIGroupAll are both "*").
func hasOrStar(list []string, v string) bool {
	for _, x := range list {
		if x == "*" || x == v {
			return true
		}
	}
	return false
}

// resourceMatches: "*" matches everything, an entry equal to the combined
// "resource/subresource" matches, and for requests with a subresource an
// entry "*/subresource" matches. A plain "pods" entry does not match a
// request for a subresource of pods.
func resourceMatches(list []string, combined, sub string) bool {
	for _, x := range list {
		if x == rbacv1.ResourceAll || x == combined {
			return true
		}
		if sub != "" && len(x) == len(sub)+2 && x[0] == '*' && x[1] == '/' && x[2:] == sub {
			return true
		}
	}
	return false
}

// nameMatches: no resourceNames matches any name (and no name); otherwise
// the request's name must be listed, so a request without a name (list,
// watch, create, deletecollection) only matches a listed "".
func nameMatches(list []string, name string) bool {
	if len(list) == 0 {
		return true
	}
	for _, x := range list {
		if x == name {
			return true
		}
	}
	return false
}

// urlMatches: "*" matches every path, an equal entry matches, and an entry
// ending in "*" matches every path starting with the entry stripped of all
// its trailing "*".
func urlMatches(list []string, path string) bool {
	for _, x := range list {
		if x == rbacv1.NonResourceAll || x == path {
			return true
		}
		if strings.HasSuffix(x, "*") && strings.HasPrefix(path, strings.TrimRight(x, "*")) {
			return true
		}
	}
	return false
}
