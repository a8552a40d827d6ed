package rbac

import (
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
)

// Covers reports whether every request r allows is also allowed by one of
// the allowed rules.
//
// r is broken into atoms, the cross product verbs × apiGroups × resources ×
// resourceNames (or "any name" when it lists none), plus nonResourceURLs ×
// verbs; each atom must be covered by a single allowed rule:
//
//   - a verb or API group "*" only by "*", anything else by itself or "*";
//   - a resource "*" only by "*"; "x" by "x" or "*"; "x/sub" and "*/sub"
//     also by "*/sub";
//   - a resource name by an allowed rule listing it or listing none; "any
//     name" only by a rule listing none;
//   - a URL by an equal one, by "*", or by a trailing-"*" prefix; a URL
//     ending in "*" (a prefix itself) thus only by an equal or broader
//     prefix.
//
// Requests are taken as the apiserver parses them (resource and subresource
// without "/"). A rule with no verbs, or a resource rule with no API groups,
// allows nothing and is covered by anything.
func Covers(allowed []rbacv1.PolicyRule, r rbacv1.PolicyRule) bool {
	covered := true
	forEachAtom(r, func(a atom) bool {
		if !atomCovered(allowed, a) {
			covered = false
		}
		return covered
	})
	return covered
}

// Uncovered returns the atoms of r (see Covers) that no allowed rule
// covers, each as a rule with one verb and one resource, API group and
// optional resource name, or one verb and one non-resource URL.
func Uncovered(allowed []rbacv1.PolicyRule, r rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	forEachAtom(r, func(a atom) bool {
		if !atomCovered(allowed, a) {
			out = append(out, a.rule())
		}
		return true
	})
	return out
}

// atom is one verb on one resource of one API group with at most one name,
// or one verb on one non-resource URL.
type atom struct {
	verb     string
	nonRes   bool
	url      string
	group    string
	resource string
	name     string
	named    bool
}

func (a atom) rule() rbacv1.PolicyRule {
	if a.nonRes {
		return rbacv1.PolicyRule{Verbs: []string{a.verb}, NonResourceURLs: []string{a.url}}
	}
	r := rbacv1.PolicyRule{Verbs: []string{a.verb}, APIGroups: []string{a.group}, Resources: []string{a.resource}}
	if a.named {
		r.ResourceNames = []string{a.name}
	}
	return r
}

func forEachAtom(r rbacv1.PolicyRule, fn func(atom) bool) {
	for _, g := range r.APIGroups {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				if len(r.ResourceNames) == 0 {
					if !fn(atom{verb: v, group: g, resource: res}) {
						return
					}
					continue
				}
				for _, n := range r.ResourceNames {
					if !fn(atom{verb: v, group: g, resource: res, name: n, named: true}) {
						return
					}
				}
			}
		}
	}
	for _, u := range r.NonResourceURLs {
		for _, v := range r.Verbs {
			if !fn(atom{verb: v, nonRes: true, url: u}) {
				return
			}
		}
	}
}

func atomCovered(allowed []rbacv1.PolicyRule, a atom) bool {
	for i := range allowed {
		if ruleCoversAtom(&allowed[i], a) {
			return true
		}
	}
	return false
}

func ruleCoversAtom(r *rbacv1.PolicyRule, a atom) bool {
	if !hasOrStar(r.Verbs, a.verb) {
		return false
	}
	if a.nonRes {
		for _, x := range r.NonResourceURLs {
			if urlCovers(x, a.url) {
				return true
			}
		}
		return false
	}
	if !hasOrStar(r.APIGroups, a.group) || !resourceCovers(r.Resources, a.resource) {
		return false
	}
	if len(r.ResourceNames) == 0 {
		return true
	}
	return a.named && nameMatches(r.ResourceNames, a.name)
}

// resourceCovers: "*" covers all; an equal entry covers; "*/sub" covers any
// resource entry whose part after the first "/" is sub.
func resourceCovers(list []string, res string) bool {
	slash := strings.IndexByte(res, '/')
	for _, x := range list {
		if x == rbacv1.ResourceAll || x == res {
			return true
		}
		if slash >= 0 && len(x) >= 2 && x[0] == '*' && x[1] == '/' && x[2:] == res[slash+1:] {
			return true
		}
	}
	return false
}

// urlCovers: owner covers url when equal, or when owner ends in "*" and url
// starts with owner stripped of its trailing "*" ("*" covers everything).
// Because a stripped prefix never ends in "*", this is exactly "an equal or
// broader prefix" when url is itself a trailing-"*" prefix.
func urlCovers(owner, url string) bool {
	if owner == url {
		return true
	}
	return strings.HasSuffix(owner, "*") && strings.HasPrefix(url, strings.TrimRight(owner, "*"))
}
