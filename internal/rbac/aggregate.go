package rbac

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ruleSet is a ClusterRole's current rules with their identity keys,
// computed on demand.
type ruleSet struct {
	rules []rbacv1.PolicyRule
	keys  []string
	keyed bool
}

func (s *ruleSet) ruleKeys() []string {
	if !s.keyed {
		s.keys = make([]string, len(s.rules))
		for i := range s.rules {
			s.keys[i] = ruleKey(&s.rules[i])
		}
		s.keyed = true
	}
	return s.keys
}

// aggregator is a ClusterRole with a usable aggregationRule and the roles
// its selectors pick, in the controller's visiting order: selector by
// selector, matching roles by name, itself excluded.
type aggregator struct {
	role    int
	sources []int
	// owned is set while the controller's field manager alone owns the
	// role's rules, so that applying an empty rule list removes them.
	owned bool
}

// aggregationFieldManager is the field manager the controller applies with.
const aggregationFieldManager = "clusterrole-aggregation-controller"

// controllerOwnsRules reports whether the role's managedFields show the
// aggregation controller as the only manager of its rules.
func controllerOwnsRules(cr *rbacv1.ClusterRole) bool {
	owned := false
	for _, mf := range cr.ManagedFields {
		if mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
			continue
		}
		if _, ok := fields["f:rules"]; !ok {
			continue
		}
		if mf.Manager != aggregationFieldManager {
			return false
		}
		owned = true
	}
	return owned
}

// convergeAggregation returns the rules of each ClusterRole in crs (names
// unique) once the clusterrole-aggregation controller has converged.
//
// For a role with an aggregationRule, the controller computes, for each
// selector in order, the ClusterRoles it selects sorted by name, skipping
// the role itself, and appends each of their current rules unless an equal
// rule (nil and empty lists being equal) is already there. When that list
// differs from the role's rules it server-side applies it, and since rules
// is an atomic list the role's rules become exactly that list, its own
// stored rules dropped. Two exceptions keep the stored rules: a selector
// that does not convert (metav1.LabelSelectorAsSelector fails) fails the
// whole sync; and an empty list is applied as no rules field at all, which
// removes the rules only when the controller's field manager alone owns
// them (as the role's managedFields tell, or because this emulation
// applied a non-empty list to it before).
//
// Aggregated roles may select other aggregated roles. The controller
// re-syncs every aggregating role whenever any ClusterRole changes, so this
// repeats syncs in name order until nothing changes; for acyclic selections
// that is the unique converged state. For cycles the real outcome depends
// on the order of events; this gives the outcome of syncing in name order,
// the order of the controller's initial listing.
func convergeAggregation(crs []*rbacv1.ClusterRole) [][]rbacv1.PolicyRule {
	cur := make([]ruleSet, len(crs))
	for i, cr := range crs {
		cur[i] = ruleSet{rules: cr.Rules}
	}
	byName := make([]int, len(crs))
	for i := range byName {
		byName[i] = i
	}
	sort.Slice(byName, func(a, b int) bool { return crs[byName[a]].Name < crs[byName[b]].Name })

	var aggs []aggregator
	for _, i := range byName {
		cr := crs[i]
		if cr.AggregationRule == nil {
			continue
		}
		a := aggregator{role: i, owned: controllerOwnsRules(cr)}
		ok := true
		for s := range cr.AggregationRule.ClusterRoleSelectors {
			sel, err := metav1.LabelSelectorAsSelector(&cr.AggregationRule.ClusterRoleSelectors[s])
			if err != nil {
				ok = false
				break
			}
			for _, j := range byName {
				if j != i && sel.Matches(labels.Set(crs[j].Labels)) {
					a.sources = append(a.sources, j)
				}
			}
		}
		if ok {
			aggs = append(aggs, a)
		}
	}

	// A pass syncs every aggregating role once. Acyclic chains settle
	// within one pass per level; the bound only matters for cycles, which
	// could otherwise keep reordering rules.
	for pass := 0; pass < len(aggs)+2; pass++ {
		changed := false
		for k := range aggs {
			a := &aggs[k]
			next := union(cur, a.sources)
			if equalKeys(next.keys, cur[a.role].ruleKeys()) {
				continue
			}
			if len(next.rules) == 0 && !a.owned {
				// Applying an empty list sends no rules field at all,
				// which only removes rules the controller manages.
				continue
			}
			cur[a.role] = next
			a.owned = len(next.rules) > 0
			changed = true
		}
		if !changed {
			break
		}
	}
	out := make([][]rbacv1.PolicyRule, len(crs))
	for i := range cur {
		out[i] = cur[i].rules
	}
	return out
}

// union appends the rules of sources in order, skipping rules equal to one
// already taken.
func union(cur []ruleSet, sources []int) ruleSet {
	next := ruleSet{rules: []rbacv1.PolicyRule{}, keys: []string{}, keyed: true}
	seen := make(map[string]struct{})
	for _, j := range sources {
		keys := cur[j].ruleKeys()
		for k, key := range keys {
			if _, dup := seen[key]; dup {
				continue
			}
			seen[key] = struct{}{}
			next.rules = append(next.rules, cur[j].rules[k])
			next.keys = append(next.keys, key)
		}
	}
	return next
}

func equalKeys(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ruleKey encodes a rule so that two rules have the same key exactly when
// they are semantically equal (nil and empty lists alike).
func ruleKey(r *rbacv1.PolicyRule) string {
	var b strings.Builder
	for _, list := range [...][]string{r.Verbs, r.APIGroups, r.Resources, r.ResourceNames, r.NonResourceURLs} {
		b.WriteString(strconv.Itoa(len(list)))
		b.WriteByte('[')
		for _, s := range list {
			b.WriteString(strconv.Itoa(len(s)))
			b.WriteByte(':')
			b.WriteString(s)
		}
		b.WriteByte(']')
	}
	return b.String()
}
